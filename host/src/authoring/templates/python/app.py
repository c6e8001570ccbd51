"""{{name}}: {{description}}

Implements the bouncer:policy WIT world in wit/policy.wit. componentize-py
generates the `wit_world` bindings at build time; to see them (or give your
editor types), run `componentize-py -d wit -w policy bindings .`.
WIT names become snake_case, records are dataclasses, an absent `option` is
None, and raising `Err(message)` from validate_settings returns its `err`.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import host
from wit_world.imports.types import KindRule, Operation, PolicyMetadata, Request, Verdict

# The host checks a configuration's settings against this before validate_settings.
SETTINGS_SCHEMA = {
    "type": "object",
    "properties": {
        "requiredLabels": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["owner"],
            "description": "Labels every governed object must carry.",
        },
    },
    "additionalProperties": False,
}


def read_settings(text: str) -> dict:
    return {"requiredLabels": ["owner"], **json.loads(text or "{}")}


class WitWorld(wit_world.WitWorld):
    def metadata(self) -> PolicyMetadata:
        return PolicyMetadata(
            name="{{name}}",
            description="{{description}}",
            version="0.1.0",
            kinds=[
                KindRule(api_groups=[""], kinds=["Pod"]),
                KindRule(api_groups=["apps"], kinds=["Deployment"]),
            ],
            operations=[Operation.CREATE, Operation.UPDATE],
            mutating=False,
            settings_schema=json.dumps(SETTINGS_SCHEMA),
            context_kinds=[],
        )

    def validate_settings(self, settings: str) -> None:
        if "" in read_settings(settings)["requiredLabels"]:
            raise Err("requiredLabels: a label name cannot be empty")

    def validate(self, request: Request, settings: str) -> Verdict:
        # Deletes carry no object; sub-resources (scale, status) carry no labels.
        if request.object is None or request.sub_resource is not None:
            return Verdict(allowed=True, message=None, code=None, warnings=[], mutation=None)
        labels = json.loads(request.object).get("metadata", {}).get("labels") or {}
        missing = [l for l in read_settings(settings)["requiredLabels"] if l not in labels]
        if missing:
            host.log(host.Level.DEBUG, f"missing labels: {missing}", [])
            what = f"{request.kind.kind} {request.namespace}/{request.name}"
            names = "`, `".join(missing)
            return Verdict(
                allowed=False,
                message=f"{what} has no `{names}` label",
                code=None,
                warnings=[],
                mutation=None,
            )
        return Verdict(allowed=True, message=None, code=None, warnings=[], mutation=None)
