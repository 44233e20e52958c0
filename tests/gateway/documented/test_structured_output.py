"""Structured output, as Google's docs write it: a Pydantic model's JSON schema in
`response_format`, the answer parsed back into the model. Only `base_url` and the model name
change. The `local` model holds its decoding to the schema (llama.cpp grammar); a model that
cannot is refused at once with a 400 naming `response_format`."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, Field

from jupyter_interactions._sdk import errors


class Ingredient(BaseModel):
    name: str = Field(description="Name of the ingredient.")
    quantity: str = Field(description="Quantity of the ingredient, including units.")


class Recipe(BaseModel):
    recipe_name: str = Field(description="The name of the recipe.")
    prep_time_minutes: int | None = Field(
        description="Optional time in minutes to prepare the recipe."
    )
    ingredients: list[Ingredient]
    instructions: list[str]


PROMPT = """
Please extract the recipe from the following text.
The user wants to make delicious chocolate chip cookies.
They need 2 and 1/4 cups of all-purpose flour, 1 teaspoon of baking soda,
1 teaspoon of salt, 1 cup of unsalted butter (softened), 3/4 cup of granulated sugar,
3/4 cup of packed brown sugar, 1 teaspoon of vanilla extract, and 2 large eggs.
For the best part, they'll need 2 cups of semisweet chocolate chips.
First, preheat the oven to 375°F (190°C). Then, in a small bowl, whisk together the flour,
baking soda, and salt. In a large bowl, cream together the butter, granulated sugar, and brown
sugar until light and fluffy. Beat in the vanilla and eggs, one at a time. Gradually beat in
the dry ingredients until just combined. Finally, stir in the chocolate chips. Drop by rounded
tablespoons onto ungreased baking sheets and bake for 9 to 11 minutes.
"""
# The docs' response_format for it: JSON text following the Pydantic model's schema.
RECIPE_FORMAT = {
    "type": "text",
    "mime_type": "application/json",
    "schema": Recipe.model_json_schema(),
}


@pytest.mark.slow
def test_the_documented_pydantic_example_parses_with_the_local_model(client):
    interaction = client.interactions.create(
        model="local",
        input=PROMPT,
        response_format=RECIPE_FORMAT,
        # One change from the docs: a fixed seed. SmolLM2 ends this recipe inside the local
        # model's 512-token cap for most seeds, not all (llamacpp.py); a test must not draw one.
        generation_config={"seed": 7},
    )
    assert interaction.status == "completed"
    recipe = Recipe.model_validate_json(interaction.output_text)
    assert recipe.recipe_name and recipe.ingredients


@pytest.mark.slow
def test_a_json_schema_given_with_response_mime_type_is_enforced_too(client):
    # The older form: the schema itself as response_format, with the JSON mime type.
    schema = {
        "type": "object",
        "properties": {
            "answer": {"type": "integer"},
            "unit": {"type": "string", "enum": ["seconds", "minutes", "hours"]},
        },
        "required": ["answer", "unit"],
    }
    interaction = client.interactions.create(
        model="local",
        input="How many minutes are in an hour?",
        response_format=schema,
        response_mime_type="application/json",
    )
    assert interaction.status == "completed"
    value = json.loads(interaction.output_text)
    assert (
        isinstance(value["answer"], int) and value["unit"] in schema["properties"]["unit"]["enum"]
    )


def test_a_model_that_cannot_hold_to_a_schema_is_refused_with_what_to_do(client):
    with pytest.raises(errors.BadRequestError) as refused:
        client.interactions.create(
            model="echo",
            input=PROMPT,
            response_format=RECIPE_FORMAT,
        )
    message = str(refused.value)
    assert "response_format" in message and "model='local'" in message


def test_output_other_than_text_is_refused_naming_it(client):
    with pytest.raises(errors.BadRequestError) as refused:
        client.interactions.create(
            model="local", input="Draw a cat.", response_format={"type": "image"}
        )
    assert "response_format type 'image'" in str(refused.value)


def test_a_schema_with_code_execution_is_refused_rather_than_dropped(client):
    # The tool loop's answers come between code runs; none of them is held to the schema.
    with pytest.raises(errors.BadRequestError) as refused:
        client.interactions.create(
            model="local",
            input=PROMPT,
            tools=[{"type": "code_execution"}],
            response_format=RECIPE_FORMAT,
        )
    assert "response_format with code_execution" in str(refused.value)
