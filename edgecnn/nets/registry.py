"""The model registry: register, list and create members of the family by name."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import ConfigError
from .recipe import Recipe

#: Smallest input side the family takes: its strided stems and entry blocks downsample 8x or more.
MIN_INPUT_SIZE = 8
#: Largest input side: the family is built for small images; beyond this a number is a typo.
MAX_INPUT_SIZE = 1024

_REGISTRY: dict[str, Recipe] = {}
_builtins_loaded = False


def register_model(recipe: Recipe | str | Path, *, overwrite: bool = False) -> Recipe:
    """Register a recipe (or a path to a recipe JSON file) under its name."""
    if not isinstance(recipe, Recipe):
        path = Path(recipe)
        try:
            recipe = Recipe.from_json(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read recipe {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise ConfigError(f"recipe {path} is not valid JSON: {exc}") from None
    if recipe.name in _REGISTRY and not overwrite and _REGISTRY[recipe.name] != recipe:
        raise ConfigError(f"a model named {recipe.name!r} is already registered")
    _REGISTRY[recipe.name] = recipe
    return recipe


def _load_builtins() -> None:
    global _builtins_loaded
    if _builtins_loaded:
        return
    _builtins_loaded = True
    for entry in sorted(resources.files("edgecnn.recipes").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".json"):
            recipe = Recipe.from_json(entry.read_text())
            _REGISTRY.setdefault(recipe.name, recipe)


def list_models() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def get_recipe(name: str) -> Recipe:
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; choose one of: {', '.join(list_models())}") from None


def create_model(name: str, input_shape=None, num_classes: int = 10, width: float = 1.0, **overrides):
    """Build a Keras model of the registered architecture `name`.

    `input_shape` defaults to the recipe's; `overrides` replace recipe fields
    (e.g. ``middle_repeats=2``, ``dropout=0.1``).
    """
    from .blocks import build

    recipe = get_recipe(name)
    if overrides:
        recipe = recipe.with_overrides(**overrides)
    recipe = recipe.scaled(width)
    shape = tuple(int(x) for x in (input_shape or recipe.default_input_shape))
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"input_shape must be (height, width, channels), got {input_shape}")
    if max(shape[:2]) > MAX_INPUT_SIZE:
        raise ConfigError(f"input images must be at most {MAX_INPUT_SIZE} pixels per side, got {shape[0]}x{shape[1]}")
    if min(shape[:2]) < MIN_INPUT_SIZE:
        raise ConfigError(f"input images must be at least {MIN_INPUT_SIZE}x{MIN_INPUT_SIZE} pixels, got {shape[0]}x{shape[1]}")
    if int(num_classes) < 2:
        raise ConfigError(f"num_classes must be at least 2, got {num_classes}")
    return build(recipe, shape, int(num_classes))
