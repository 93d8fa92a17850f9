"""Language Server Protocol layer: maps incidents and live runtime state onto LSP features."""
