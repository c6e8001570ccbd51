// {{name}}: {{description}}
//
// Implements the bouncer:policy WIT world in wit/policy.wit. WIT names become
// camelCase (`validate-settings` is `validateSettings`, `sub-resource` is
// `subResource`), an absent `option` is `undefined`, enums are strings
// ("create"), and throwing from validateSettings returns its `err`.

import { log } from "bouncer:policy/host@0.1.3";

// The host checks a configuration's settings against this before validateSettings.
const SETTINGS_SCHEMA = {
  type: "object",
  properties: {
    requiredLabels: {
      type: "array",
      items: { type: "string" },
      default: ["owner"],
      description: "Labels every governed object must carry.",
    },
  },
  additionalProperties: false,
};

function readSettings(text) {
  return { requiredLabels: ["owner"], ...JSON.parse(text || "{}") };
}

export function metadata() {
  return {
    name: "{{name}}",
    description: "{{description}}",
    version: "0.1.0",
    kinds: [
      { apiGroups: [""], kinds: ["Pod"] },
      { apiGroups: ["apps"], kinds: ["Deployment"] },
    ],
    operations: ["create", "update"],
    mutating: false,
    settingsSchema: JSON.stringify(SETTINGS_SCHEMA),
    contextKinds: [],
  };
}

export function validateSettings(text) {
  if (readSettings(text).requiredLabels.some((label) => label === "")) {
    throw "requiredLabels: a label name cannot be empty";
  }
}

export function validate(request, text) {
  // Deletes carry no object; sub-resources (scale, status) carry no labels.
  if (request.object === undefined || request.subResource !== undefined) {
    return { allowed: true, warnings: [] };
  }
  const settings = readSettings(text);
  const object = JSON.parse(request.object);
  const labels = (object.metadata && object.metadata.labels) || {};
  const missing = settings.requiredLabels.filter((label) => !(label in labels));
  if (missing.length > 0) {
    const what = `${request.kind.kind} ${request.namespace}/${request.name}`;
    log("debug", `missing labels: ${missing.join(", ")}`, []);
    return {
      allowed: false,
      message: `${what} has no \`${missing.join("`, `")}\` label`,
      warnings: [],
    };
  }
  return { allowed: true, warnings: [] };
}
