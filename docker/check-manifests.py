#!/usr/bin/python3
"""Checks the deployment files for what a schema cannot see: the Kubernetes
manifests meet the "restricted" Pod Security level and have their probes,
resources and shutdown timing; docker-compose.yml, nginx.conf and the
Dockerfile agree with them and with the daemon's own settings.

  check-manifests.py              check docker/ and the Dockerfile
  check-manifests.py --self-test  also break each rule once and make sure
                                  the check notices

Reads the files with PyYAML (Debian's python3-yaml); prints one line per
problem and exits 1 if there is any.
"""
import copy
import os
import re
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K8S = os.path.join(ROOT, "docker", "k8s")


def load_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def known_variables():
    """Every LOSSD_* variable the daemon reads (server/config.c's table)."""
    with open(os.path.join(ROOT, "server", "config.c")) as f:
        return set(re.findall(r'"(LOSSD_[A-Z_]+)"', f.read()))


def size_bytes(text):
    """64M, 64MiB, 64m, 67108864 -> bytes (k, M, G are powers of 1024)."""
    m = re.fullmatch(r"(\d+)\s*([kKmMgG]?)(i?B)?", str(text).strip())
    if not m:
        return None
    return int(m.group(1)) * 1024 ** " KMG".index(m.group(2).upper() or " ")


def seconds(text):
    m = re.fullmatch(r"(\d+)(s?)", str(text).strip())
    return int(m.group(1)) if m else None


def get(obj, path, default=None):
    for key in path.split("."):
        if not isinstance(obj, dict) or key not in obj:
            return default
        obj = obj[key]
    return obj


class Checker:
    def __init__(self):
        self.problems = []

    def need(self, cond, where, what):
        if not cond:
            self.problems.append("%s: %s" % (where, what))

    # ---------------------------------------------------------- Kubernetes
    def pod_security(self, where, spec):
        need = self.need
        psc = spec.get("securityContext") or {}
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            need(not spec.get(key), where, "%s must not be set" % key)
        for v in spec.get("volumes") or []:
            need("hostPath" not in v, where, "hostPath volume %s" % v.get("name"))
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            w = "%s container %s" % (where, c.get("name"))
            csc = c.get("securityContext") or {}

            def eff(key):
                return csc.get(key, psc.get(key))

            need(eff("runAsNonRoot") is True, w, "runAsNonRoot: true")
            need(eff("runAsUser") != 0, w, "runAsUser must not be 0")
            need(csc.get("allowPrivilegeEscalation") is False, w,
                 "allowPrivilegeEscalation: false")
            need(csc.get("privileged") is not True, w, "privileged must not be true")
            need(csc.get("readOnlyRootFilesystem") is True, w,
                 "readOnlyRootFilesystem: true")
            caps = csc.get("capabilities") or {}
            need("ALL" in (caps.get("drop") or []), w, "capabilities.drop: [ALL]")
            need(set(caps.get("add") or []) <= {"NET_BIND_SERVICE"}, w,
                 "capabilities.add beyond NET_BIND_SERVICE")
            seccomp = get(csc, "seccompProfile.type") or get(psc, "seccompProfile.type")
            need(seccomp in ("RuntimeDefault", "Localhost"), w,
                 "seccompProfile.type: RuntimeDefault")
            for p in c.get("ports") or []:
                need(not p.get("hostPort"), w, "hostPort must not be set")

    def probes(self, w, c):
        ports = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            hg = get(c, probe + ".httpGet") or {}
            self.need(hg.get("path") == path, w, "%s.httpGet.path: %s" % (probe, path))
            port = hg.get("port")
            self.need(port in ports or port in ports.values(), w,
                      "%s port %r is not a container port" % (probe, port))
        self.need(8080 in ports.values(), w, "containerPort 8080")

    def resources(self, w, c):
        for kind in ("requests", "limits"):
            for res in ("cpu", "memory"):
                self.need(get(c, "resources.%s.%s" % (kind, res)) is not None, w,
                          "resources.%s.%s" % (kind, res))

    def env(self, w, c):
        known = known_variables()
        env = {}
        for e in c.get("env") or []:
            env[e["name"]] = e.get("value")
            if e["name"].startswith("LOSSD_"):
                self.need(e["name"] in known, w, "unknown variable %s" % e["name"])
        return env

    def shutdown(self, w, spec, c, env):
        """preStop pause + LOSSD_GRACE + the second lossd gives the
        computations it stops must fit in the grace period."""
        pre = get(c, "lifecycle.preStop") or {}
        pause = None
        if "sleep" in pre:
            pause = get(pre, "sleep.seconds")
        elif "exec" in pre:
            cmd = get(pre, "exec.command") or []
            if len(cmd) == 2 and cmd[0].endswith("sleep"):
                pause = seconds(cmd[1])
        self.need(pause is not None and pause > 0, w, "a preStop sleep")
        grace = seconds(env.get("LOSSD_GRACE", ""))
        self.need(grace is not None, w, "LOSSD_GRACE set")
        total = spec.get("terminationGracePeriodSeconds")
        if pause is not None and grace is not None:
            self.need(isinstance(total, int) and total > pause + grace + 1, w,
                      "terminationGracePeriodSeconds (%s) must exceed the preStop "
                      "pause (%s) + LOSSD_GRACE (%s) + 1" % (total, pause, grace))
        return env

    def deployment(self, d):
        spec = get(d, "spec.template.spec") or {}
        where = "Deployment %s" % get(d, "metadata.name")
        self.pod_security(where, spec)
        self.need(spec.get("containers"), where, "no containers")
        for c in spec.get("containers") or []:
            w = "%s container %s" % (where, c.get("name"))
            self.probes(w, c)
            self.resources(w, c)
            self.shutdown(w, spec, c, self.env(w, c))
        labels = get(d, "spec.template.metadata.labels") or {}
        sel = get(d, "spec.selector.matchLabels") or {}
        self.need(sel and sel.items() <= labels.items(), where,
                  "selector does not match the pod labels")
        return labels

    def selects(self, kind, doc, labels, path):
        sel = get(doc, path) or {}
        self.need(sel and sel.items() <= labels.items(), "%s %s" % (kind, get(doc, "metadata.name")),
                  "selector %s does not select the Deployment's pods" % sel)

    def k8s(self, docs, kustomization):
        by_kind = {}
        for d in docs:
            by_kind.setdefault(d.get("kind"), []).append(d)
        for kind in ("Deployment", "Service", "HorizontalPodAutoscaler",
                     "PodDisruptionBudget"):
            self.need(len(by_kind.get(kind, [])) == 1, "k8s", "one %s" % kind)
        if self.problems:
            return
        dep = by_kind["Deployment"][0]
        labels = self.deployment(dep)
        svc = by_kind["Service"][0]
        self.selects("Service", svc, labels, "spec.selector")
        self.need(any(p.get("targetPort") in ("http", 8080) for p in get(svc, "spec.ports") or []),
                  "Service", "a port targeting http (8080)")
        hpa = by_kind["HorizontalPodAutoscaler"][0]
        self.need(get(hpa, "spec.scaleTargetRef.kind") == "Deployment" and
                  get(hpa, "spec.scaleTargetRef.name") == get(dep, "metadata.name"),
                  "HorizontalPodAutoscaler", "scaleTargetRef is the Deployment")
        self.need(any(get(m, "resource.name") == "cpu" for m in get(hpa, "spec.metrics") or []),
                  "HorizontalPodAutoscaler", "a CPU metric")
        self.need((get(hpa, "spec.minReplicas") or 1) >= 2, "HorizontalPodAutoscaler",
                  "minReplicas >= 2 (the PDB needs a spare)")
        pdb = by_kind["PodDisruptionBudget"][0]
        self.selects("PodDisruptionBudget", pdb, labels, "spec.selector.matchLabels")
        self.need("maxUnavailable" in pdb["spec"] or "minAvailable" in pdb["spec"],
                  "PodDisruptionBudget", "maxUnavailable or minAvailable")
        for sm in by_kind.get("ServiceMonitor", []):
            self.need(any(e.get("path") == "/metrics" for e in get(sm, "spec.endpoints") or []),
                      "ServiceMonitor", "an endpoint on /metrics")
        for r in kustomization.get("resources") or []:
            self.need(os.path.exists(os.path.join(K8S, r)), "kustomization",
                      "missing resource %s" % r)

    # ------------------------------------------------- Compose, nginx, image
    def compose(self, comp, nginx, k8s_env):
        lossd = get(comp, "services.lossd") or {}
        proxy = get(comp, "services.nginx") or {}
        env = lossd.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        w = "docker-compose.yml lossd"
        known = known_variables()
        for k in env:
            self.need(k in known, w, "unknown variable %s" % k)
        self.need(get(lossd, "healthcheck.test"), w, "a healthcheck")
        self.need(lossd.get("restart") in ("always", "unless-stopped", "on-failure"), w,
                  "a restart policy")
        self.need(lossd.get("read_only") is True, w, "read_only: true")
        self.need("ALL" in (lossd.get("cap_drop") or []), w, "cap_drop: [ALL]")
        self.need("ports" not in lossd, w,
                  "replicas publish no port (nginx does), or --scale collides")
        self.need((get(lossd, "deploy.replicas") or 1) >= 2, w, "deploy.replicas >= 2")
        stop = seconds(lossd.get("stop_grace_period", "10s"))
        grace = seconds(env.get("LOSSD_GRACE", ""))
        self.need(stop is not None and grace is not None and stop > grace + 1, w,
                  "stop_grace_period (%s) must exceed LOSSD_GRACE (%s) + 1" % (stop, grace))
        self.need(proxy.get("restart"), "docker-compose.yml nginx", "a restart policy")
        self.need("lossd" in (proxy.get("depends_on") or {}), "docker-compose.yml nginx",
                  "depends_on lossd")
        body = size_bytes(env.get("LOSSD_MAX_BODY", "64M"))
        m = re.search(r"client_max_body_size\s+(\S+);", nginx)
        self.need(m and size_bytes(m.group(1)) == body, "nginx.conf",
                  "client_max_body_size must equal LOSSD_MAX_BODY (%s bytes)" % body)
        self.need(body == size_bytes(k8s_env.get("LOSSD_MAX_BODY", "64M")), "k8s",
                  "LOSSD_MAX_BODY differs from docker-compose.yml's")
        m = re.search(r"proxy_next_upstream\s+([^;]+);", nginx)
        tries = m.group(1).split() if m else []
        self.need("error" in tries and "non_idempotent" in tries, "nginx.conf",
                  "proxy_next_upstream error ... non_idempotent (retry on another replica)")
        self.need(re.search(r"server\s+lossd:8080", nginx), "nginx.conf",
                  "upstream server lossd:8080")
        compute = seconds(env.get("LOSSD_MAX_COMPUTE", "60"))
        m = re.search(r"proxy_read_timeout\s+(\S+);", nginx)
        read = seconds(m.group(1)) if m else None
        self.need(compute is not None and read is not None and 0 < compute < read,
                  "nginx.conf", "proxy_read_timeout (%s) must exceed LOSSD_MAX_COMPUTE (%s), "
                  "or a request lossd stops gets nginx's 504" % (read, compute))

    def dockerfile(self, text):
        w = "Dockerfile"
        args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, re.M))
        froms = [re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), f)
                 for f in re.findall(r"^FROM\s+(\S+)", text, re.M)]
        self.need(len(froms) >= 2 and "bookworm" in froms[0] and
                  froms[-1] == "debian:bookworm-slim", w,
                  "multi-stage: bookworm build stage, bookworm-slim run stage")
        self.need(re.search(r"make test", text), w, "the build stage runs make test")
        self.need(re.search(r"^USER\s+[1-9]\d*:[1-9]\d*\s*$", text, re.M), w,
                  "USER uid:gid, numeric and non-zero")
        self.need(re.search(r"^EXPOSE\s+8080\s*$", text, re.M), w, "EXPOSE 8080")
        self.need(re.search(r'^ENTRYPOINT\s+\[', text, re.M), w, "exec-form ENTRYPOINT")
        self.need(re.search(r'HEALTHCHECK[^\n]*(\\\n[^\n]*)*"--check"', text), w,
                  "HEALTHCHECK through lossd --check")
        run_stage = text[text.rfind("\nFROM "):]
        self.need(not re.search(r"-dev\b|build-essential", run_stage), w,
                  "no -dev package or compiler in the run stage")


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


def load_all():
    kust = yaml.safe_load(read("docker/k8s/kustomization.yaml"))
    docs = []
    for r in kust.get("resources") or []:
        docs += load_docs(os.path.join(K8S, r))
    optional = os.path.join(K8S, "servicemonitor.yaml")
    if os.path.exists(optional) and "servicemonitor.yaml" not in kust.get("resources", []):
        docs += load_docs(optional)
    return {"docs": docs, "kust": kust,
            "compose": yaml.safe_load(read("docker/docker-compose.yml")),
            "nginx": read("docker/nginx.conf"), "dockerfile": read("Dockerfile")}


def run(files):
    c = Checker()
    c.k8s(files["docs"], files["kust"])
    dep = [d for d in files["docs"] if d.get("kind") == "Deployment"]
    k8s_env = {}
    if dep:
        for ctr in get(dep[0], "spec.template.spec.containers") or []:
            k8s_env.update({e["name"]: e.get("value") for e in ctr.get("env") or []})
    c.compose(files["compose"], files["nginx"], k8s_env)
    c.dockerfile(files["dockerfile"])
    return c.problems


def container(files):
    dep = [d for d in files["docs"] if d.get("kind") == "Deployment"][0]
    return dep["spec"]["template"]["spec"]["containers"][0]


def pod(files):
    return [d for d in files["docs"] if d.get("kind") == "Deployment"][0]["spec"]["template"]["spec"]


# Each mutation breaks one rule; the check must report it.
MUTATIONS = {
    "readOnlyRootFilesystem off": lambda f: container(f)["securityContext"].update(readOnlyRootFilesystem=False),
    "privilege escalation": lambda f: container(f)["securityContext"].pop("allowPrivilegeEscalation"),
    "capabilities kept": lambda f: container(f)["securityContext"].pop("capabilities"),
    "seccomp unconfined": lambda f: (container(f)["securityContext"].pop("seccompProfile"),
                                     pod(f)["securityContext"].pop("seccompProfile")),
    "root user": lambda f: container(f)["securityContext"].update(runAsUser=0),
    "hostNetwork": lambda f: pod(f).update(hostNetwork=True),
    "no readiness probe": lambda f: container(f).pop("readinessProbe"),
    "liveness on /readyz": lambda f: container(f)["livenessProbe"]["httpGet"].update(path="/readyz"),
    "no memory limit": lambda f: container(f)["resources"]["limits"].pop("memory"),
    "no preStop": lambda f: container(f).pop("lifecycle"),
    "grace period too short": lambda f: pod(f).update(terminationGracePeriodSeconds=10),
    "misspelt variable": lambda f: container(f)["env"].append({"name": "LOSSD_GRACEFUL", "value": "1"}),
    "nginx body limit": lambda f: f.update(nginx=f["nginx"].replace("client_max_body_size 64m", "client_max_body_size 1m")),
    "nginx no retry": lambda f: f.update(nginx=f["nginx"].replace("non_idempotent", "")),
    "nginx reads less than lossd computes": lambda f: f.update(nginx=f["nginx"].replace("proxy_read_timeout 60s", "proxy_read_timeout 30s")),
    "compose no restart": lambda f: f["compose"]["services"]["lossd"].pop("restart"),
    "compose short stop": lambda f: f["compose"]["services"]["lossd"].update(stop_grace_period="10s"),
    "compose published port": lambda f: f["compose"]["services"]["lossd"].update(ports=["8080:8080"]),
    "root image": lambda f: f.update(dockerfile=f["dockerfile"].replace("USER 10001:10001", "USER root")),
    "shell-form entrypoint": lambda f: f.update(dockerfile=f["dockerfile"].replace('ENTRYPOINT ["/usr/local/bin/lossd"]', "ENTRYPOINT /usr/local/bin/lossd")),
    "HPA on nothing": lambda f: [d for d in f["docs"] if d["kind"] == "HorizontalPodAutoscaler"][0]["spec"].update(metrics=[]),
    "PDB selects nothing": lambda f: [d for d in f["docs"] if d["kind"] == "PodDisruptionBudget"][0]["spec"]["selector"].update(matchLabels={"app": "other"}),
}


def main(argv):
    files = load_all()
    problems = run(files)
    for p in problems:
        print("FAIL", p)
    n = len(files["docs"])
    print("check-manifests: %d Kubernetes objects, compose, nginx.conf, Dockerfile: %d problems"
          % (n, len(problems)))
    if problems:
        return 1
    if "--self-test" in argv:
        missed = []
        for name, mutate in MUTATIONS.items():
            broken = copy.deepcopy(files)
            mutate(broken)
            if not run(broken):
                missed.append(name)
        for name in missed:
            print("FAIL self-test: breaking '%s' went unnoticed" % name)
        print("check-manifests self-test: %d of %d broken variants caught"
              % (len(MUTATIONS) - len(missed), len(MUTATIONS)))
        return 1 if missed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
