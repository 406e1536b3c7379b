#!/usr/bin/python3
"""Validates the Kubernetes manifests of packaging/kubernetes/ against the API schemas of
the Kubernetes Python client (Debian package python3-kubernetes): every field must be
known (no typos, no unknown fields), every value of its type, every required field
present. Then the sluice-specific rules of shared/spec/packaging.md: probes, security
context, grace period, the Service selecting the pods, the ConfigMap's sluice.yaml passing
`sluice -t`, and the checksum annotation matching it.

Usage: validate-manifests.py [--sluice BIN] DIR_OR_FILES...   exit 0 valid, 1 with reasons
"""
import datetime
import hashlib
import os
import re
import subprocess
import sys
import tempfile

import kubernetes.client as k8s
import yaml

KINDS = {("v1", "ConfigMap"): "V1ConfigMap", ("v1", "Service"): "V1Service",
         ("v1", "Secret"): "V1Secret", ("apps/v1", "Deployment"): "V1Deployment",
         ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget"}
PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float)}


def check(value, typ, path, errors):
    """Checks `value` against the client's type string `typ` (a model name, list[...],
    dict(str, ...), a primitive, or object = anything such as int-or-string)."""
    if value is None:
        return
    m = re.fullmatch(r"list\[(.+)\]", typ)
    if m:
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list")
            return
        for i, v in enumerate(value):
            check(v, m.group(1), f"{path}[{i}]", errors)
        return
    m = re.fullmatch(r"dict\(str, (.+)\)", typ)
    if m:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a mapping")
            return
        for k, v in value.items():
            check(v, m.group(1), f"{path}.{k}", errors)
        return
    if typ in PRIMITIVES:
        ok = isinstance(value, PRIMITIVES[typ]) and not (typ != "bool" and isinstance(value, bool))
        if not ok:
            errors.append(f"{path}: expected {typ}, got {type(value).__name__} {value!r}")
        return
    if typ in ("object", "datetime", "date"):
        return
    model = getattr(k8s, typ)
    if not isinstance(value, dict):
        errors.append(f"{path}: expected a {typ} mapping")
        return
    by_json = {j: p for p, j in model.attribute_map.items()}
    for k, v in value.items():
        if k not in by_json:
            errors.append(f"{path}.{k}: unknown field (in {typ})")
            continue
        check(v, model.openapi_types[by_json[k]], f"{path}.{k}", errors)
    # required fields: the model's constructor refuses None for them
    try:
        model(**{p: (value.get(j) if value.get(j) is None or model.openapi_types[p] in PRIMITIVES
                     or model.openapi_types[p] == "object" else True)
                 for p, j in model.attribute_map.items()})
    except ValueError as e:
        errors.append(f"{path}: {e}")


def validate_doc(doc, where, errors):
    if not isinstance(doc, dict):
        errors.append(f"{where}: not a mapping")
        return None
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key not in KINDS:
        errors.append(f"{where}: unsupported apiVersion/kind {key}")
        return None
    check(doc, KINDS[key], f"{where}:{doc['kind']}", errors)
    return key[1]


def sluice_rules(docs, sluice, errors):
    """The contract's rules on the set of manifests."""
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    for kind in ("ConfigMap", "Deployment", "Service", "PodDisruptionBudget"):
        if kind not in by_kind:
            errors.append(f"missing a {kind}")
    if errors:
        return
    cm, dep, svc = by_kind["ConfigMap"][0], by_kind["Deployment"][0], by_kind["Service"][0]
    conf = cm["data"].get("sluice.yaml", "")
    cfg = yaml.safe_load(conf)
    if cfg.get("admin", {}).get("bind") != "*:9900":
        errors.append("ConfigMap: admin.bind must be \"*:9900\"")
    delay = parse_seconds(cfg.get("shutdown_delay", "0s"))
    timeout = parse_seconds(cfg.get("shutdown_timeout", "30s"))
    if delay < 5:
        errors.append("ConfigMap: shutdown_delay must be at least 5s")
    if not cfg.get("admin", {}).get("token_file"):
        errors.append("ConfigMap: admin.token_file missing")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "sluice.yaml")
        with open(path, "w") as f:
            f.write(conf)
        r = subprocess.run([sluice, "-t", "-c", path], capture_output=True, text=True)
        if r.returncode != 0:
            errors.append(f"ConfigMap sluice.yaml fails sluice -t: {r.stderr.strip()}")
    tmpl = dep["spec"]["template"]
    pod = tmpl["spec"]
    if dep["spec"].get("replicas") != 2:
        errors.append("Deployment: replicas must be 2")
    if not pod.get("terminationGracePeriodSeconds", 30) > delay + timeout:
        errors.append("Deployment: terminationGracePeriodSeconds must exceed "
                      f"shutdown_delay + shutdown_timeout ({delay + timeout}s)")
    want_sum = hashlib.sha256(conf.encode()).hexdigest()
    got_sum = tmpl.get("metadata", {}).get("annotations", {}).get("checksum/config")
    if got_sum != want_sum:
        errors.append(f"Deployment: annotation checksum/config is {got_sum}, the ConfigMap's "
                      f"sluice.yaml has sha256 {want_sum}")
    c = pod["containers"][0]
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        h = c.get(probe, {}).get("httpGet", {})
        if h.get("path") != path or h.get("port") not in ("admin", 9900) or ports.get("admin") != 9900:
            errors.append(f"Deployment: {probe} must be httpGet {path} on the admin port 9900")
    sc = c.get("securityContext", {})
    for k, v in (("runAsNonRoot", True), ("readOnlyRootFilesystem", True),
                 ("allowPrivilegeEscalation", False)):
        if sc.get(k) != v:
            errors.append(f"Deployment: securityContext.{k} must be {v}")
    caps = sc.get("capabilities", {})
    if caps.get("drop") != ["ALL"]:
        errors.append("Deployment: capabilities.drop must be [ALL]")
    low = [p for p in ports.values() if p < 1024]
    if caps.get("add") not in (None, []) and caps.get("add") != ["NET_BIND_SERVICE"]:
        errors.append("Deployment: only NET_BIND_SERVICE may be added")
    if low and caps.get("add") != ["NET_BIND_SERVICE"]:
        errors.append(f"Deployment: ports {low} < 1024 need capabilities.add [NET_BIND_SERVICE]")
    if not low and caps.get("add"):
        errors.append("Deployment: NET_BIND_SERVICE is not needed for ports >= 1024")
    mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    cfg_vol = [n for n, v in vols.items() if v.get("configMap", {}).get("name") == cm["metadata"]["name"]]
    if not cfg_vol or mounts.get(cfg_vol[0], {}).get("mountPath") != "/etc/sluice" or \
            not mounts[cfg_vol[0]].get("readOnly"):
        errors.append("Deployment: the ConfigMap must be mounted read-only at /etc/sluice")
    labels = tmpl.get("metadata", {}).get("labels", {})
    sel = svc["spec"].get("selector", {})
    if not sel or any(labels.get(k) != v for k, v in sel.items()):
        errors.append(f"Service: selector {sel} does not select the pods {labels}")
    if svc["spec"].get("type") != "LoadBalancer" or svc["spec"].get("externalTrafficPolicy") != "Local":
        errors.append("Service: type LoadBalancer with externalTrafficPolicy Local")
    for p in svc["spec"]["ports"]:
        if p.get("targetPort") not in ports and p.get("targetPort") not in ports.values():
            errors.append(f"Service: targetPort {p.get('targetPort')} is not a container port")
    pdb = by_kind["PodDisruptionBudget"][0]
    psel = pdb["spec"].get("selector", {}).get("matchLabels", {})
    if not psel or any(labels.get(k) != v for k, v in psel.items()):
        errors.append("PodDisruptionBudget: selector does not select the pods")


def parse_seconds(text):
    total = 0
    for n, unit in re.findall(r"(\d+)(ms|s|m|h)", str(text)):
        total += int(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def main(argv):
    sluice = "build/sluice"
    if argv[:1] == ["--sluice"]:
        sluice, argv = argv[1], argv[2:]
    files = []
    for a in argv:
        if os.path.isdir(a):
            files += sorted(os.path.join(a, f) for f in os.listdir(a) if f.endswith(".yaml"))
        else:
            files.append(a)
    errors, docs = [], []
    for path in files:
        with open(path) as f:
            for i, doc in enumerate(yaml.safe_load_all(f)):
                if doc is None:
                    continue
                if validate_doc(doc, f"{os.path.basename(path)}#{i}", errors):
                    docs.append(doc)
    if not errors:
        sluice_rules(docs, sluice, errors)
    if errors:
        print("\n".join(errors))
        return 1
    print(f"{len(docs)} manifests valid: " + ", ".join(d["kind"] for d in docs))
    return 0


if __name__ == "__main__":
    datetime.datetime  # noqa: B018 (the client's datetime fields are not type-checked)
    sys.exit(main(sys.argv[1:]))
