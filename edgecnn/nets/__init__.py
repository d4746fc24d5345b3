"""The Xception-style model family: recipes as data, a registry, Keras blocks."""

from .recipe import ConvSpec, Recipe, make_divisible
from .registry import MAX_INPUT_SIZE, MIN_INPUT_SIZE, create_model, get_recipe, list_models, register_model

__all__ = [
    "MAX_INPUT_SIZE",
    "MIN_INPUT_SIZE",
    "ConvSpec",
    "Recipe",
    "create_model",
    "get_recipe",
    "list_models",
    "make_divisible",
    "register_model",
]
