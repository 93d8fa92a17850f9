"""Agent leaves in tree files: their params checked at load time, each problem at its line, and
the tree schema describing exactly the params the kinds accept."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from canopy import schemas
from canopy.server.llm import ModelRequest
from canopy.server.runtime.agent_config import AgentConfigError
from canopy.server.runtime.agents import LlmAgent, PythonAgent, Tool
from canopy.server.runtime.definition import AGENT_KINDS, DefinitionError, build_tree, load_tree
from canopy.server.runtime.definition.agent_kinds import agent_params
from canopy.server.runtime.definition.builtin_kinds import OPTIONAL, REQUIRED
from canopy.server.runtime.inprocess import InProcessControl

from .agent_runs import run_tree, user, write_fixtures
from .helpers import only_problem, problems

SCHEMA = schemas.load("tree.schema.json")

STEPS = """
def route(category):
    return category

NOT_A_FUNCTION = 3
"""


def llm_tree(params: str) -> str:
    return f"""
root:
  type: llm
  name: classify
  params:
    model: claude-haiku-4-5
{params}"""


@pytest.mark.parametrize("name", AGENT_KINDS)
def test_schema_params_match_the_agent_kinds(name: str) -> None:
    params = SCHEMA["$defs"]["params"][name]
    table = agent_params(name)
    assert list(params["properties"]) == [p.name for p in table]
    assert params["required"] == [p.name for p in table if p.default is REQUIRED]
    for param in table:
        described = params["properties"][param.name]
        assert described.get("description"), f"{name}.{param.name} needs a description"
        if param.type not in ("any", "array"):
            assert described["type"] == param.type
        if param.default not in (REQUIRED, OPTIONAL):
            assert described["default"] == param.default
    rule = next(
        r
        for r in SCHEMA["$defs"]["node"]["allOf"]
        if r["if"]["properties"]["type"].get("const") == name
    )
    assert rule["then"]["allOf"] == [{"$ref": "#/$defs/behaviour"}]


def test_a_workflow_tree_loads_and_builds_agents(write: Callable[[str, str], Path]) -> None:
    write("steps.py", STEPS)
    path = write(
        "flow.yaml",
        """
        root:
          type: Sequence
          name: flow
          children:
            - type: llm
              name: classify
              params:
                model: claude-haiku-4-5
                system: "You sort tickets."
                prompt: "Classify: {{ ticket }}"
                inputs: [ticket]
                output: category
                tools:
                  - function: "steps:route"
                    description: Route a ticket
                    input_schema: {type: object, properties: {category: {type: string}}}
                    effects: true
            - type: python
              name: route
              params: {function: "steps:route", inputs: [category], outputs: [queue]}
        """,
    )
    definition = load_tree(str(path))
    classify = definition.root.children[0]
    assert classify.params["max_tokens"] == 1024  # defaults filled in
    assert classify.params["retries"] == 3
    assert classify.params["max_tool_rounds"] == 5
    built = build_tree(definition)
    llm = built.behaviours["flow/classify"]
    assert isinstance(llm, LlmAgent)
    assert llm.tools[0].tool_name == "route"
    assert llm.tools[0].effects
    python = built.behaviours["flow/route"]
    assert isinstance(python, PythonAgent)
    assert python.reference == "steps:route"


def test_an_unknown_param_is_reported_at_its_key(write: Callable[[str, str], Path]) -> None:
    path = write("flow.yaml", llm_tree("    promt: hi\n    prompt: hi\n    output: x"))
    problem = only_problem(lambda: load_tree(str(path)))
    assert problem.line == 6
    assert problem.message.startswith("unknown parameter `promt` (did you mean `prompt`?)")


def test_a_template_syntax_error_names_the_template_and_its_line(
    write: Callable[[str, str], Path],
) -> None:
    path = write("flow.yaml", llm_tree('    prompt: "Hello\\n{{ ticket }\\n"\n    output: x'))
    problem = only_problem(lambda: load_tree(str(path)))
    assert problem.line == 2  # the node
    assert problem.message == ("node 'classify': llm: prompt template, line 2: unexpected '}'")


def test_a_schema_that_is_not_a_json_schema_is_refused(write: Callable[[str, str], Path]) -> None:
    path = write("flow.yaml", llm_tree("    prompt: hi\n    schema: {type: thing}"))
    problem = only_problem(lambda: load_tree(str(path)))
    assert problem.message.startswith(
        "node 'classify': llm: `schema` is not a valid JSON Schema at type: 'thing' is not valid"
    )


def test_outputs_must_be_properties_of_the_schema(write: Callable[[str, str], Path]) -> None:
    params = (
        "    prompt: hi\n"
        "    schema: {type: object, properties: {label: {type: string}}}\n"
        "    outputs: [label, score]"
    )
    path = write("flow.yaml", llm_tree(params))
    problem = only_problem(lambda: load_tree(str(path)))
    assert problem.message == (
        "node 'classify': llm: `outputs`: 'score' is not a property of the schema (it has: label)"
    )


def test_an_answer_must_go_somewhere(write: Callable[[str, str], Path]) -> None:
    path = write("flow.yaml", llm_tree("    prompt: hi"))
    problem = only_problem(lambda: load_tree(str(path)))
    assert problem.message == (
        "node 'classify': llm: give `output` (a key for the text) or `schema` (to parse it as JSON)"
    )


def test_unresolvable_functions_are_reported(write: Callable[[str, str], Path]) -> None:
    write("steps.py", STEPS)
    path = write(
        "flow.yaml",
        """
        root:
          type: Sequence
          children:
            - type: python
              name: missing_module
              params: {function: "nowhere:route"}
            - type: python
              name: missing_function
              params: {function: "steps:rout"}
            - type: python
              name: not_callable
              params: {function: "steps:NOT_A_FUNCTION"}
        """,
    )
    found = [(p.line, p.message) for p in problems(lambda: load_tree(str(path)))]
    assert found == [
        (
            4,
            "node 'Sequence/missing_module': python: `function`: module 'nowhere' not found "
            f"in {path.parent} or on sys.path",
        ),
        (
            7,
            "node 'Sequence/missing_function': python: `function`: module 'steps' has no "
            "attribute 'rout' (did you mean `route`?)",
        ),
        (
            10,
            "node 'Sequence/not_callable': python: `function`: 'steps:NOT_A_FUNCTION' is a "
            "int, not a function",
        ),
    ]


def test_a_key_whose_name_is_not_an_identifier_is_refused(
    write: Callable[[str, str], Path],
) -> None:
    write("steps.py", STEPS)
    path = write(
        "flow.yaml",
        """
        root:
          type: python
          params: {function: "steps:route", inputs: [a/b-c, x/name, y/name]}
        """,
    )
    found = [p.message for p in problems(lambda: load_tree(str(path)))]
    assert found == [
        "node 'python': python: `inputs`: key 'a/b-c' must end in a Python identifier (its "
        "name in templates and function arguments)",
        "node 'python': python: `inputs`: keys 'x/name' and 'y/name' have the same name",
    ]


def test_agent_classes_refuse_bad_settings_when_constructed() -> None:
    with pytest.raises(AgentConfigError, match=r"llm agent 'ask': prompt template, line 1"):
        LlmAgent("ask", model="m", prompt="{% if %}", output="x")
    with pytest.raises(AgentConfigError, match=r"`temperature` must be between 0 and 1, got 2"):
        LlmAgent("ask", model="m", prompt="hi", output="x", temperature=2)
    with pytest.raises(AgentConfigError, match=r"tool name 'bad name' must be 1-64"):
        LlmAgent(
            "ask",
            model="m",
            prompt="hi",
            output="x",
            tools=[Tool(print, "prints", {"type": "object"}, name="bad name")],
        )
    with pytest.raises(AgentConfigError, match=r"`timeout_s` must be more than 0 seconds, got 0"):
        PythonAgent("run", function=print, timeout_s=0)


GROOT2_WORKFLOW = """<root BTCPP_format="4" main_tree_to_execute="Triage">
  <BehaviorTree ID="Triage">
    <Sequence>
      <Classify name="classify" model="claude-haiku-4-5" prompt="Classify: {{ ticket }}"
                inputs="ticket" output="category" max_tokens="50" stop_sequences="END;STOP"/>
      <Route name="route" function="routing:route" inputs="category" outputs="queue"/>
    </Sequence>
  </BehaviorTree>
</root>
"""

GROOT2_PROJECT = """[nodes]
Classify = "llm"
Route = "python"

[trees."triage.xml".blackboard]
ticket = "I was charged twice"
"""


async def test_agents_in_a_groot2_tree_through_the_project_file(
    sqlite_control: InProcessControl, write: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write("canopy.toml", GROOT2_PROJECT)
    write("routing.py", "def route(category):\n    return 'queue-' + category\n")
    request = ModelRequest(
        model="claude-haiku-4-5",
        messages=user("Classify: I was charged twice"),
        max_tokens=50,
        stop_sequences=("END", "STOP"),
    )
    write_fixtures(tmp_path / "triage.fixtures.yaml", [(request, {"text": "billing"})])
    run = await run_tree(sqlite_control, write("triage.xml", GROOT2_WORKFLOW))
    assert (run.blackboard["/category"], run.blackboard["/queue"]) == ("billing", "queue-billing")


def test_an_agents_port_that_cannot_be_read_is_refused_with_its_line(
    write: Callable[[str, str], Path],
) -> None:
    broken = GROOT2_WORKFLOW.replace('max_tokens="50"', 'max_tokens="fifty"')
    with pytest.raises(DefinitionError) as raised:
        load_tree(str(write("triage.xml", broken)), registry={"Classify": "llm", "Route": "python"})
    (problem,) = raised.value.problems
    assert problem.line == 4
    assert problem.message == "<Classify> attribute max_tokens must be an integer, got 'fifty'"
