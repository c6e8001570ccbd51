// require-team-label: workloads and Ingresses carry a `team` label whose value
// is one of the allowed teams.
//
// Built with componentize-js against the bouncer:policy WIT world (`wit/`):
// `bouncer build .` runs `jco componentize policy.js --wit wit --world-name policy`.
// WIT names become camelCase here: `validate-settings` is `validateSettings`,
// record fields such as `sub-resource` are `subResource`, and an `option` is
// `undefined` when absent. Throwing from `validateSettings` returns its `err`.

import { log } from "bouncer:policy/host@0.1.3";

const DEFAULTS = { label: "team", teams: [] };

// The host checks a configuration against this schema before validateSettings runs.
const SETTINGS_SCHEMA = {
  type: "object",
  properties: {
    label: {
      type: "string",
      minLength: 1,
      default: "team",
      description: "The label that names the owning team.",
    },
    teams: {
      type: "array",
      items: { type: "string", minLength: 1 },
      default: [],
      description: "Allowed teams; any non-empty value when empty.",
    },
  },
  additionalProperties: false,
};

const GOVERNED = [
  { apiGroups: [""], kinds: ["Pod"] },
  { apiGroups: ["apps"], kinds: ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"] },
  { apiGroups: ["batch"], kinds: ["Job", "CronJob"] },
  { apiGroups: ["networking.k8s.io"], kinds: ["Ingress"] },
];

function readSettings(text) {
  return { ...DEFAULTS, ...JSON.parse(text || "{}") };
}

export function metadata() {
  return {
    name: "require-team-label",
    description: "Workloads and Ingresses carry a team label from the allowed list.",
    version: "0.1.0",
    kinds: GOVERNED,
    operations: ["create", "update"],
    mutating: false,
    settingsSchema: JSON.stringify(SETTINGS_SCHEMA),
    contextKinds: [],
  };
}

export function validateSettings(text) {
  const settings = readSettings(text);
  const duplicates = settings.teams.filter((t, i) => settings.teams.indexOf(t) !== i);
  if (duplicates.length > 0) {
    throw `teams lists ${duplicates.join(", ")} more than once`;
  }
}

export function validate(request, text) {
  // Sub-resources (scale, status) carry no labels of their own.
  if (request.object === undefined || request.subResource !== undefined) {
    return allow();
  }
  const settings = readSettings(text);
  const object = JSON.parse(request.object);
  const labels = (object.metadata && object.metadata.labels) || {};
  const team = labels[settings.label];
  const what = `${request.kind.kind} ${request.namespace}/${request.name || object.metadata.generateName || ""}`;
  const allowed = settings.teams.length > 0 ? `: one of ${settings.teams.join(", ")}` : "";
  if (team === undefined || team === "") {
    return deny(`${what} has no \`${settings.label}\` label; label it with its owning team${allowed}`);
  }
  if (settings.teams.length > 0 && !settings.teams.includes(team)) {
    log("info", `unknown team ${team}`, [{ key: "object", value: what }]);
    return deny(`${what} has \`${settings.label}: ${team}\`, which is not a known team${allowed}`);
  }
  return allow();
}

function allow() {
  return { allowed: true, warnings: [] };
}

function deny(message) {
  return { allowed: false, message, warnings: [] };
}
