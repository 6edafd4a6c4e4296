"""The node registry: names, namespaces, aliases, and refusing bad or clashing declarations."""

from __future__ import annotations

import pytest

from studio.api import API_VERSION, Combo, Float, Input, Int, Node, NodePack, Output, String
from studio.core.errors import RegistryError
from studio.core.registry import NodeRegistry
from studio.plugins import LoadReport, register_pack

VALUE_OUTPUT = Output("value", "INT")


def make_node(name="Thing", *, inputs=(), outputs=(VALUE_OUTPUT,), **attrs):
    """A fresh Node subclass (a new class each call, so registrations never share one)."""
    namespace = {"NAME": name, "INPUTS": list(inputs), "OUTPUTS": list(outputs), **attrs}
    return type(name + "Node", (Node,), namespace)


def snapshot(registry):
    return (
        sorted(spec.type for spec in registry),
        {alias: registry.canonical(alias) for spec in registry for alias in spec.aliases},
    )


# -- names -----------------------------------------------------------------------------------
BUILTINS = ["PrimitiveInt", "PrimitiveFloat", "PrimitiveString", "PrimitiveBoolean", "Seed", "MathInt",
            "MathFloat", "Compare", "BooleanLogic", "Switch", "StringConcatenate", "StringFormat",
            "PreviewAny", "SaveText"]


@pytest.mark.parametrize("type_id", BUILTINS)
def test_builtin_nodes_have_bare_names(registry, type_id):
    assert type_id in registry
    spec = registry.spec(type_id)
    assert spec.type == type_id
    assert spec.pack is None
    assert registry.canonical(type_id) == type_id


def test_no_builtin_name_is_namespaced(registry):
    assert len(registry) >= len(BUILTINS)
    assert all("." not in spec.type for spec in registry)


def test_plugin_nodes_are_namespaced(registry):
    cls = make_node("Blur")
    spec = registry.register(cls, pack="mypack")
    assert spec.type == "mypack.Blur"
    assert spec.pack == "mypack"
    assert "mypack.Blur" in registry
    assert registry.spec("mypack.Blur").cls is cls
    assert "Blur" not in registry
    assert registry.spec("Blur") is None


def test_two_packs_may_use_the_same_node_name():
    registry = NodeRegistry()
    registry.register(make_node("Blur"), pack="one")
    registry.register(make_node("Blur"), pack="two")
    registry.register(make_node("Blur"))
    assert {spec.type for spec in registry} == {"one.Blur", "two.Blur", "Blur"}


def test_register_pack_namespaces_plugins_only():
    registry = NodeRegistry()
    report = LoadReport()
    register_pack(registry, NodePack("fx", [make_node("Glow")]), builtin=False, report=report)
    register_pack(registry, NodePack("core", [make_node("Glow")]), builtin=True, report=report)
    assert "fx.Glow" in registry and "Glow" in registry
    assert report.errors == [] and report.packs == ["fx", "core"]


def test_register_pack_reports_a_refused_node_and_rolls_the_pack_back():
    registry = NodeRegistry()
    report = LoadReport()
    good = make_node("Good")
    bad = make_node("Bad", API_VERSION=API_VERSION + 1)
    register_pack(registry, NodePack("fx", [good, bad]), builtin=False, report=report)
    assert "fx.Good" not in registry and "fx.Bad" not in registry and len(registry) == 0  # never half a pack
    assert len(report.errors) == 1 and "fx" in report.errors[0] and "API version" in report.errors[0]
    assert "none of its nodes were loaded" in report.errors[0] and report.packs == []


def test_unknown_names(registry):
    assert "NoSuchNode" not in registry
    assert registry.spec("NoSuchNode") is None
    assert registry.canonical("NoSuchNode") is None
    assert 3 not in registry


# -- aliases ---------------------------------------------------------------------------------
def test_aliases_resolve_to_the_canonical_type(registry):
    cls = make_node("Upscale", ALIASES=("UpscaleOld", "legacy.Upscale"))
    registry.register(cls, pack="mypack")
    for alias in ("UpscaleOld", "legacy.Upscale"):
        assert alias in registry
        assert registry.canonical(alias) == "mypack.Upscale"
        assert registry.spec(alias).type == "mypack.Upscale"
    # Aliases do not count as node types of their own.
    assert [spec.type for spec in registry].count("mypack.Upscale") == 1
    assert "UpscaleOld" not in [spec.type for spec in registry]


def test_unregister_removes_the_node_and_its_aliases():
    registry = NodeRegistry()
    registry.register(make_node("Upscale", ALIASES=("UpscaleOld",)), pack="p")
    registry.unregister("p.Upscale")
    assert "p.Upscale" not in registry and "UpscaleOld" not in registry
    assert len(registry) == 0
    # The names are free again.
    registry.register(make_node("Upscale", ALIASES=("UpscaleOld",)), pack="p")
    assert registry.canonical("UpscaleOld") == "p.Upscale"


# -- clashes ---------------------------------------------------------------------------------
def test_duplicate_type_id_is_refused_and_names_the_owner(registry):
    first = make_node("Blur")
    registry.register(first, pack="mypack")
    before = snapshot(registry)
    second = make_node("Blur")
    with pytest.raises(RegistryError) as info:
        registry.register(second, pack="mypack")
    message = str(info.value)
    assert "'mypack.Blur'" in message
    assert "already taken" in message
    assert first.__qualname__ in message
    assert snapshot(registry) == before
    assert registry.spec("mypack.Blur").cls is first


def test_plugin_cannot_take_a_builtin_name_as_alias(registry):
    before = snapshot(registry)
    cls = make_node("MyMath", ALIASES=("FreshAlias", "MathInt"))
    with pytest.raises(RegistryError) as info:
        registry.register(cls, pack="mypack")
    message = str(info.value)
    assert "alias 'MathInt'" in message
    assert "already taken" in message
    # All or nothing: neither the node nor its first, free alias went in.
    assert snapshot(registry) == before
    assert "mypack.MyMath" not in registry
    assert "FreshAlias" not in registry
    assert registry.spec("MathInt").pack is None


def test_alias_clashing_with_another_alias_is_refused(registry):
    registry.register(make_node("A", ALIASES=("Shared",)), pack="one")
    before = snapshot(registry)
    with pytest.raises(RegistryError) as info:
        registry.register(make_node("B", ALIASES=("Shared",)), pack="two")
    message = str(info.value)
    assert "'Shared'" in message and "'one.A'" in message
    assert snapshot(registry) == before
    assert registry.canonical("Shared") == "one.A"


def test_type_id_clashing_with_an_alias_is_refused():
    registry = NodeRegistry()
    registry.register(make_node("New", ALIASES=("Old",)), pack="p")
    with pytest.raises(RegistryError, match=r"already an alias of 'p\.New'"):
        registry.register(make_node("Old"))
    assert "Old" in registry and registry.canonical("Old") == "p.New"
    assert len(registry) == 1


def test_alias_equal_to_own_id_or_listed_twice_is_refused():
    registry = NodeRegistry()
    with pytest.raises(RegistryError, match="own type id"):
        registry.register(make_node("X", ALIASES=("p.X",)), pack="p")
    with pytest.raises(RegistryError, match="twice"):
        registry.register(make_node("Y", ALIASES=("Z", "Z")), pack="p")
    assert len(registry) == 0 and "Z" not in registry


# -- API version and bad declarations ---------------------------------------------------------
def test_newer_api_version_is_refused(registry):
    before = snapshot(registry)
    cls = make_node("Future", API_VERSION=API_VERSION + 1)
    with pytest.raises(RegistryError) as info:
        registry.register(cls, pack="mypack")
    message = str(info.value)
    assert f"version {API_VERSION + 1}" in message
    assert f"version {API_VERSION}" in message
    assert "update" in message.lower()
    assert snapshot(registry) == before


def test_current_api_version_is_accepted():
    registry = NodeRegistry()
    registry.register(make_node("Now", API_VERSION=API_VERSION), pack="p")
    assert "p.Now" in registry


@pytest.mark.parametrize(
    ("attrs", "fragment"),
    [
        ({"inputs": [Int("steps"), Float("steps")]}, "'steps' is declared twice"),
        ({"inputs": [Int("steps", "twenty")]}, "default of input 'steps' is invalid"),
        ({"inputs": [Int("steps", 200, max=100)]}, "default of input 'steps' is invalid"),
        ({"inputs": [Combo("sampler", ["euler", "ddim"], default="heun")]}, "default of input 'sampler' is invalid"),
        ({"inputs": [String("text", 3)]}, "default of input 'text' is invalid"),
        ({"inputs": [Input("image", "IMAGE", default="x.png")]}, "default of input 'image' is invalid"),
        ({"inputs": [Input("x", "MY TYPE")]}, "invalid type"),
        ({"inputs": [Input("x", "")]}, "invalid type"),
        ({"inputs": [Input("not-an-identifier", "INT")]}, "Python identifier"),
        ({"inputs": [("steps", "INT")]}, "Input objects"),
        ({"outputs": [Output("bad", "INT|")]}, "invalid type"),
        ({"outputs": ["INT"]}, "Output objects"),
        ({"name": "Has.Dot"}, "NAME"),
        ({"name": "Has Space"}, "NAME"),
        ({"name": ""}, "NAME"),
        ({"ALIASES": ("bad alias",)}, "not a valid type name"),
    ],
)
def test_bad_declarations_are_refused(registry, attrs, fragment):
    attrs = dict(attrs)
    name = attrs.pop("name", "Bad")
    cls = make_node("Bad", **attrs)
    cls.NAME = name
    before = snapshot(registry)
    with pytest.raises(RegistryError) as info:
        registry.register(cls, pack="mypack")
    assert fragment in str(info.value)
    # The message says which class was refused.
    assert cls.__qualname__ in str(info.value)
    assert snapshot(registry) == before


def test_bad_pack_name_is_refused():
    registry = NodeRegistry()
    with pytest.raises(RegistryError, match="pack name"):
        registry.register(make_node("Blur"), pack="my.pack")
    assert len(registry) == 0


def test_non_node_class_is_refused():
    registry = NodeRegistry()
    with pytest.raises(RegistryError, match="not a subclass"):
        registry.register(dict)


def test_callable_choices_default_is_not_checked_at_registration():
    # The files a callable lists may not exist yet when the plugin loads.
    registry = NodeRegistry()
    registry.register(make_node("Loader", inputs=[Combo("ckpt", lambda: [], default="model.safetensors")]), pack="p")
    assert "p.Loader" in registry


# -- describe --------------------------------------------------------------------------------
def test_describe_builtin(registry):
    info = registry.spec("MathInt").describe()
    assert info["type"] == "MathInt"
    assert info["display_name"] == "Math (Int)"
    assert info["category"] == "utils/math"
    assert info["pack"] is None
    assert info["output_node"] is False
    assert info["description"]
    names = [i["name"] for i in info["inputs"]]
    assert names == ["a", "b", "operation"]
    operation = info["inputs"][2]
    assert operation["type"] == "STRING"
    assert operation["default"] == "add"
    assert "divide" in operation["choices"]
    assert info["outputs"] == [{"name": "result", "type": "INT"}]
    assert registry.spec("PreviewAny").describe()["output_node"] is True


def test_describe_plugin_node(registry):
    cls = make_node(
        "Sampler",
        inputs=[
            Int("steps", 20, min=1, max=150, tooltip="More steps, more detail"),
            String("prompt", "", multiline=True),
            Input("model", "MODEL"),
            Input("mask", "MASK", optional=True),
            Combo("scheduler", lambda: ["karras", "normal"]),
        ],
        outputs=[Output("latent", "LATENT")],
        DISPLAY_NAME="My Sampler",
        CATEGORY="sampling",
        DESCRIPTION="Samples.",
        OUTPUT_NODE=False,
    )
    info = registry.register(cls, pack="mypack").describe()
    assert info["type"] == "mypack.Sampler"
    assert info["pack"] == "mypack"
    assert info["display_name"] == "My Sampler"
    assert info["category"] == "sampling"
    assert info["description"] == "Samples."
    steps, prompt, model, mask, scheduler = info["inputs"]
    assert steps == {"name": "steps", "type": "INT", "required": True, "default": 20, "min": 1, "max": 150,
                     "step": 1, "tooltip": "More steps, more detail"}
    assert prompt["multiline"] is True and prompt["default"] == ""
    assert model == {"name": "model", "type": "MODEL", "required": True}
    assert mask == {"name": "mask", "type": "MASK", "required": False}
    assert scheduler["choices"] == ["karras", "normal"]
    assert "default" not in scheduler
    assert info["outputs"] == [{"name": "latent", "type": "LATENT"}]


def test_describe_is_json_ready(registry):
    import json

    for spec in registry:
        json.dumps(spec.describe())


def test_display_name_falls_back_to_name():
    registry = NodeRegistry()
    assert registry.register(make_node("Plain"), pack="p").display_name == "Plain"


def test_iteration_is_sorted_by_category_then_type(registry):
    keys = [(spec.category, spec.type) for spec in registry]
    assert keys == sorted(keys)
