"""max-replicas: Deployments above a configurable replica count are refused,
or capped when the policy runs with `mutate: true`.

Built with componentize-py against the bouncer:policy WIT world (`wit/`):
`bouncer build .` runs `componentize-py -d wit -w policy componentize app -o policy.wasm`.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import host
from wit_world.imports.types import (
    KindRule,
    Mutation_JsonPatch,
    Operation,
    PolicyMetadata,
    Request,
    Verdict,
)

# The settings this policy accepts, as JSON Schema: the host checks a
# configuration against it before calling validate_settings.
SETTINGS_SCHEMA = {
    "type": "object",
    "properties": {
        "maxReplicas": {
            "type": "integer",
            "minimum": 1,
            "default": 10,
            "description": "The most replicas a Deployment may ask for.",
        },
        "mutate": {
            "type": "boolean",
            "default": False,
            "description": "Cap the replica count instead of refusing the Deployment.",
        },
    },
    "additionalProperties": False,
}


def read_settings(text: str) -> dict:
    settings = json.loads(text or "{}")
    return {
        "maxReplicas": settings.get("maxReplicas", 10),
        "mutate": settings.get("mutate", False),
    }


class WitWorld(wit_world.WitWorld):
    def metadata(self) -> PolicyMetadata:
        return PolicyMetadata(
            name="max-replicas",
            description="Deployments ask for at most maxReplicas replicas; with mutate, larger counts are capped.",
            version="0.1.0",
            kinds=[KindRule(api_groups=["apps"], kinds=["Deployment"])],
            operations=[Operation.CREATE, Operation.UPDATE],
            mutating=True,
            settings_schema=json.dumps(SETTINGS_SCHEMA),
            context_kinds=[],
        )

    def validate_settings(self, settings: str) -> None:
        # The schema already holds the types; this is what a schema cannot say.
        if read_settings(settings)["maxReplicas"] > 1000:
            raise Err("maxReplicas above 1000 is not a limit; remove the policy instead")

    def validate(self, request: Request, settings: str) -> Verdict:
        config = read_settings(settings)
        if request.object is None or request.sub_resource is not None:
            return allow()
        deployment = json.loads(request.object)
        # An absent replicas field means 1 (the API server's default).
        replicas = deployment.get("spec", {}).get("replicas", 1)
        limit = config["maxReplicas"]
        if replicas <= limit:
            return allow()
        name = f"Deployment {request.namespace}/{request.name or deployment['metadata'].get('generateName', '')}"
        if config["mutate"]:
            host.log(host.Level.INFO, f"capping {name} at {limit} replicas", [])
            patch = [{"op": "replace", "path": "/spec/replicas", "value": limit}]
            return Verdict(
                allowed=True,
                message=None,
                code=None,
                warnings=[f"{name}: replicas capped from {replicas} to {limit} (maxReplicas)"],
                mutation=Mutation_JsonPatch(json.dumps(patch)),
            )
        return Verdict(
            allowed=False,
            message=f"{name} asks for {replicas} replicas; at most {limit} are allowed (maxReplicas)",
            code=None,
            warnings=[],
            mutation=None,
        )


def allow() -> Verdict:
    return Verdict(allowed=True, message=None, code=None, warnings=[], mutation=None)
