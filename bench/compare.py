#!/usr/bin/env python3
"""fleet against Ansible and pyinfra on the same loopback sshd fleets (bench/run).

Every tool gets the same ssh_config (key, known_hosts, strict checking, user,
KexAlgorithms curve25519-sha256) written by examples/local-fleet/start-fleet; pyinfra's
paramiko reads the same file for host, port, user and key. Runs alternate between tools
(the order rotates every round) and wait for a quiet CPU; figures are medians. Peak
memory is GNU time's maximum resident set of the controller (for forking tools: its
largest process).
"""
import argparse
import json
import os
import pathlib
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
START = REPO / "examples/local-fleet/start-fleet"
STOP = REPO / "examples/local-fleet/stop-fleet"
HZ = os.sysconf("SC_CLK_TCK")


def forks_for(n):
    return n if n <= 20 else 50


def net_for(n):
    return {5: 210, 20: 211, 50: 212, 100: 213}.get(n, 214 + n % 30)


def cpu_ticks():
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, parts[:8])
    return user + nice + system + irq + softirq + steal


def quiet(limit=60):
    """Waits until other processes leave the CPU alone (<10% over 0.2 s)."""
    deadline = time.time() + limit
    while time.time() < deadline:
        c0 = cpu_ticks()
        time.sleep(0.2)
        if cpu_ticks() - c0 <= HZ * os.cpu_count() / 50:
            return True
    return False


def pgrep(pattern):
    out = subprocess.run(["pgrep", "-f", "--", pattern], capture_output=True, text=True)
    return [p for p in out.stdout.split() if p and int(p) != os.getpid()]


class Fleet:
    """A started fleet of n sshd hosts and every tool's configuration for it."""

    def __init__(self, n, tmp, venv):
        self.n = n
        self.forks = forks_for(n)
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix=f"fleet-compare-{n}-", dir=tmp))
        env = dict(os.environ, FLEET_TEST_NET=str(net_for(n)))
        env.pop("FLEET_TEST_PORT", None)
        subprocess.run([str(START), str(n), str(self.dir)], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        d = self.dir
        cfg = (d / "ssh_config").read_text()
        self.user = re.search(r"^\s*User (\S+)", cfg, re.M).group(1)
        self.names = [f"s{i}" for i in range(1, n + 1)]
        (d / "hostnames").write_text("\n".join(self.names) + "\n")
        (d / "cp").mkdir()
        (d / "upload").mkdir(mode=0o777)
        os.chmod(d / "upload", 0o777)
        with open(d / "blob", "wb") as f:
            f.write(os.urandom(1024 * 1024))
        # fleet: fleet.toml from start-fleet points at ssh_config, key and known_hosts.
        (d / "recipes").mkdir()
        (d / "recipes/bench.rhai").write_text(
            "/// n commands per host over its one connection.\n/// @arg n: int = 10  commands\n"
            "fn warm(n) { each(hosts(), |h| { for i in 0..n { h.run(\"true\"); } }); }\n\n"
            "/// A 1 MB file to every host.\n/// @arg dest: string  directory\n"
            "fn up(dest) { each(hosts(), |h| { h.upload(\"blob\", `${dest}/${h.name}`); }); }\n")
        # Ansible: the same ssh_config through ssh_args; ControlPersist is Ansible's own
        # default (it keeps a playbook's tasks on one connection), in a dir of ours so
        # that leftover masters are ended between runs.
        (d / "ansible.cfg").write_text(
            "[defaults]\n"
            f"inventory = {d}/inventory.ini\n"
            "host_key_checking = True\n"
            "interpreter_python = /usr/bin/python3\n"
            "gathering = explicit\n"
            "stdout_callback = minimal\n"
            "retry_files_enabled = False\n"
            "[ssh_connection]\n"
            f"ssh_args = -F {d}/ssh_config -o ControlMaster=auto -o ControlPersist=60s\n"
            f"control_path_dir = {d}/cp\n"
            "pipelining = True\n")
        (d / "inventory.ini").write_text("[all]\n" + "\n".join(self.names) + "\n")
        (d / "warm.yml").write_text(
            "- hosts: all\n  gather_facts: false\n  tasks:\n" + "".join(
                f"    - name: step {i}\n      ansible.builtin.shell: \"true\"\n" for i in range(10)))
        (d / "up.yml").write_text(
            "- hosts: all\n  gather_facts: false\n  tasks:\n"
            f"    - ansible.builtin.copy:\n        src: {d}/blob\n"
            f"        dest: \"{d}/upload/ansible-{{{{ inventory_hostname }}}}\"\n")
        # pyinfra: paramiko reads the same ssh_config; known_hosts and strict checking
        # as for the others; no agent, no key search.
        (d / "inventory.py").write_text(
            f"hosts = ({self.names!r}, {{\n"
            f"    'ssh_config_file': '{d}/ssh_config',\n"
            f"    'ssh_known_hosts_file': '{d}/known_hosts',\n"
            "    'ssh_strict_host_key_checking': 'yes',\n"
            f"    'ssh_key': '{d}/id_ed25519',\n"
            f"    'ssh_user': '{self.user}',\n"
            "    'ssh_allow_agent': False,\n"
            "    'ssh_look_for_keys': False,\n"
            "})\n")
        (d / "warm.py").write_text(
            "from pyinfra.operations import server\n" + "".join(
                f"server.shell(name='step {i}', commands=['true'])\n" for i in range(10)))
        (d / "up.py").write_text(
            "from pyinfra import host\nfrom pyinfra.operations import files\n"
            f"files.put(src='{d}/blob', dest='{d}/upload/pyinfra-' + host.name)\n")
        self.listeners = [line.split()[1] for line in (d / "pids").read_text().splitlines()
                          if len(line.split()) > 1]

    def settle(self):
        """Ends Ansible's persisted masters; waits until no session of a previous run
        is left (at most 10 s)."""
        for sock in (self.dir / "cp").glob("*"):
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"],
                           capture_output=True)
        deadline = time.time() + 10
        while time.time() < deadline:
            children = subprocess.run(["pgrep", "-P", ",".join(self.listeners)],
                                      capture_output=True, text=True).stdout.split()
            if not children and not pgrep(f"{self.dir}/ssh_config"):
                return
            time.sleep(0.02)

    def clear_uploads(self):
        for f in (self.dir / "upload").iterdir():
            f.unlink()

    def stop(self):
        subprocess.run([str(STOP), str(self.dir)], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def timed(cmd, env=None, cwd=None):
    """Wall ms and peak RSS (KB) of one run; a failing run ends the benchmark."""
    usage = tempfile.NamedTemporaryFile(delete=False)
    usage.close()
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", usage.name, *cmd],
                       env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    wall = (time.perf_counter() - t0) * 1000
    rss = int(pathlib.Path(usage.name).read_text().split()[-1])
    os.unlink(usage.name)
    if p.returncode != 0:
        sys.exit(f"bench: failed ({p.returncode}): {' '.join(map(str, cmd))}\n"
                 f"{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return wall, rss


def version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except OSError:
        return "not found"


def scenarios(fl, fleet, venv):
    """(scenario, tool) -> (command, env, before): what each round times."""
    d, n, f = fl.dir, fl.n, str(fl.forks)
    fleet_cmd = [fleet, "-C", str(d), "--no-progress", "-q", "--forks", f]
    aenv = dict(os.environ, ANSIBLE_CONFIG=str(d / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    ans, play, pyi = f"{venv}/bin/ansible", f"{venv}/bin/ansible-playbook", f"{venv}/bin/pyinfra"
    xargs = ["xargs", "-a", str(d / "hostnames"), "-P", f, "-I{}"]
    up = str(d / "upload")
    return {
        ("cold", "fleet"): (fleet_cmd + ["exec", "all", "--", "true"], None, None),
        ("cold", "xargs ssh"): (xargs + ["ssh", "-F", str(d / "ssh_config"), "{}", "true"], None, None),
        ("cold", "ansible raw"): ([ans, "all", "-m", "raw", "-a", "true", "-f", f], aenv, None),
        ("cold", "ansible command"): ([ans, "all", "-m", "command", "-a", "true", "-f", f], aenv, None),
        ("cold", "pyinfra"): ([pyi, "-y", "--parallel", f, str(d / "inventory.py"), "exec", "--", "true"], None, None),
        ("warm", "fleet"): (fleet_cmd + ["warm", "--n", "10"], None, None),
        ("warm", "ansible"): ([play, "-f", f, str(d / "warm.yml")], aenv, None),
        ("warm", "pyinfra"): ([pyi, "-y", "--parallel", f, str(d / "inventory.py"), str(d / "warm.py")], None, None),
        ("warm 1", "fleet"): (fleet_cmd + ["warm", "--n", "1"], None, None),
        ("warm 11", "fleet"): (fleet_cmd + ["warm", "--n", "11"], None, None),
        ("upload", "fleet"): (fleet_cmd + ["up", up], None, fl.clear_uploads),
        ("upload", "xargs scp"): (xargs + ["scp", "-q", "-F", str(d / "ssh_config"), str(d / "blob"), "{}:" + up + "/scp-{}"], None, fl.clear_uploads),
        ("upload", "ansible"): ([play, "-f", f, str(d / "up.yml")], aenv, fl.clear_uploads),
        ("upload", "pyinfra"): ([pyi, "-y", "--parallel", f, str(d / "inventory.py"), str(d / "up.py")], None, fl.clear_uploads),
    }


def inventory_files(tmp, hosts, groups):
    """The same hosts and groups as fleet TOML and Ansible INI."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="fleet-compare-inv-", dir=tmp))
    toml, ini = [], {}
    for i in range(hosts):
        g = f"g{i % groups}"
        toml.append(f'[hosts.h{i}]\naddress = "10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"\n'
                    f'groups = ["{g}"]\nvars = {{ rack = {i % 40} }}\n')
        ini.setdefault(g, []).append(f"h{i} ansible_host=10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256} rack={i % 40}")
    for g in range(groups):
        toml.append(f'[groups.g{g}]\nvars = {{ tier = "t{g % 5}" }}\n')
    (d / "inventory.toml").write_text("\n".join(toml))
    (d / "inventory.ini").write_text("".join(
        f"[{g}]\n" + "\n".join(lines) + f"\n[{g}:vars]\ntier=t{int(g[1:]) % 5}\n\n" for g, lines in ini.items()))
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fleet")
    ap.add_argument("--venv")
    ap.add_argument("--sizes", default="20 100")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--inventory-hosts", type=int, default=10000)
    ap.add_argument("--out")
    ap.add_argument("--markdown")
    ap.add_argument("--chart")
    ap.add_argument("--replot", metavar="RESULTS", help="only redraw --chart (and --markdown) from a results file")
    a = ap.parse_args()
    if a.replot:
        results = json.loads(pathlib.Path(a.replot).read_text())
        sizes = sorted({int(k.split("|")[0]) for k in results["median_ms"] if k.split("|")[1] in ("cold", "warm", "upload")})
        inv_hosts = max(int(k.split("|")[0]) for k in results["median_ms"])
        if a.markdown:
            write_markdown(pathlib.Path(a.markdown), render(results, sizes, inv_hosts), results["facts"])
        if a.chart:
            chart(results, sizes, pathlib.Path(a.chart))
        return
    if not (a.fleet and a.venv and a.out):
        sys.exit("bench/compare.py: --fleet, --venv and --out are needed (bench/run passes them)")
    sizes = [int(s) for s in a.sizes.split()]
    tmp = "/tmp"  # sshd reads key files as the test user: keep them world-searchable
    times, rss = {}, {}
    noisy = 0

    def record(key, wall, mem):
        times.setdefault(key, []).append(wall)
        rss.setdefault(key, []).append(mem)

    facts = {
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "openssh": version(["ssh", "-V"]),
        "fleet": version([a.fleet, "--version"]),
        "ansible": version([f"{a.venv}/bin/ansible", "--version"]),
        "pyinfra": version([f"{a.venv}/bin/pyinfra", "--version"]),
        "python": version([f"{a.venv}/bin/python", "--version"]),
        "runs": a.runs,
        "date": time.strftime("%Y-%m-%d"),
    }
    print(f"bench: {facts['cores']} cores, {facts['openssh']}, {a.runs} runs per figure, sizes {sizes}")

    for n in sizes:
        fl = Fleet(n, tmp, a.venv)
        try:
            todo = scenarios(fl, a.fleet, a.venv)
            print(f"== {n} hosts, parallelism {fl.forks}")
            # One untimed round: page cache, first sessions, Ansible's and pyinfra's imports.
            for (_scenario, _tool), (cmd, env, before) in todo.items():
                fl.settle()
                if before:
                    before()
                timed(cmd, env)
            keys = list(todo)
            for r in range(a.runs):
                # Rotate the order so that drift hits every tool alike.
                shift = r % len(keys)
                for key in keys[shift:] + keys[:shift]:
                    cmd, env, before = todo[key]
                    fl.settle()
                    if before:
                        before()
                    if not quiet():
                        noisy += 1
                    wall, mem = timed(cmd, env)
                    record(f"{n}|{key[0]}|{key[1]}", wall, mem)
                print(f"   round {r + 1}/{a.runs} done")
        finally:
            fl.stop()

    # Inventory scale and start-up: no hosts involved.
    inv = inventory_files(tmp, a.inventory_hosts, 200)
    proj = pathlib.Path(tempfile.mkdtemp(prefix="fleet-compare-recipes-", dir=tmp))
    (proj / "fleet.toml").write_text("")
    (proj / "inventory.toml").write_text('[hosts.h1]\nconnection = "local"\n')
    (proj / "recipes").mkdir()
    for i in range(100):
        (proj / f"recipes/r{i}.rhai").write_text(
            f"/// Recipe {i}.\n/// @arg pattern: string = \"all\"  which hosts\n/// @arg count: int = {i}  how many\n"
            f"fn r{i}(pattern, count) {{ each(hosts(pattern), |h| {{ h.run(`echo ${{count}}`); }}); }}\n")
    others = {
        ("inventory", "fleet"): [a.fleet, "-i", str(inv / "inventory.toml"), "hosts", "all", "--json"],
        ("inventory", "fleet (ini)"): [a.fleet, "-i", str(inv / "inventory.ini"), "hosts", "all", "--json"],
        ("inventory", "ansible-inventory"): [f"{a.venv}/bin/ansible-inventory", "-i", str(inv / "inventory.ini"), "--list"],
        ("startup", "fleet"): [a.fleet, "-C", str(proj), "recipes"],
        ("startup", "ansible --version"): [f"{a.venv}/bin/ansible", "--version"],
        ("startup", "pyinfra --version"): [f"{a.venv}/bin/pyinfra", "--version"],
    }
    for cmd in others.values():
        timed(cmd, cwd=str(proj))
    for _ in range(max(a.runs, 3)):
        for (scenario, tool), cmd in others.items():
            if not quiet():
                noisy += 1
            wall, mem = timed(cmd, cwd=str(proj))
            record(f"{a.inventory_hosts}|{scenario}|{tool}", wall, mem)
    shutil.rmtree(inv, ignore_errors=True)
    shutil.rmtree(proj, ignore_errors=True)

    results = {
        "facts": facts,
        "noisy_runs": noisy,
        "median_ms": {k: statistics.median(v) for k, v in times.items()},
        "peak_rss_kb": {k: max(v) for k, v in rss.items()},
        "runs_ms": times,
    }
    out = pathlib.Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    table = render(results, sizes, a.inventory_hosts)
    print(table)
    if a.markdown:
        write_markdown(pathlib.Path(a.markdown), table, facts)
    if a.chart:
        chart(results, sizes, pathlib.Path(a.chart))


def verdict(ok):
    return "PASS" if ok else "MISS"


def render(results, sizes, inv_hosts):
    med, rss = results["median_ms"], results["peak_rss_kb"]
    lines = ["| hosts | scenario | tool | median | × fleet | peak RSS |", "|---:|---|---|---:|---:|---:|"]
    for key in sorted(med, key=lambda k: (int(k.split("|")[0]), k.split("|")[1], k.split("|")[2] != "fleet", k)):
        n, scenario, tool = key.split("|")
        base = med.get(f"{n}|{scenario}|fleet")
        ratio = f"{med[key] / base:.2f}" if base else ""
        lines.append(f"| {n} | {scenario} | {tool} | {med[key] / 1000:.3f} s | {ratio} | {rss[key] / 1024:.0f} MB |")
    checks = []
    for n in sizes:
        g = lambda s, t: med.get(f"{n}|{s}|{t}")
        fleet, floor, pyi, raw = g("cold", "fleet"), g("cold", "xargs ssh"), g("cold", "pyinfra"), g("cold", "ansible raw")
        if fleet and floor:
            checks.append(f"- {n} hosts, cold: fleet / xargs = {fleet / floor:.2f} (target ≤ 1.2): {verdict(fleet / floor <= 1.2)}")
        if fleet and pyi:
            checks.append(f"- {n} hosts, cold: pyinfra / fleet = {pyi / fleet:.2f} (target ≥ 1.5): {verdict(pyi / fleet >= 1.5)}")
        if fleet and raw:
            checks.append(f"- {n} hosts, cold: ansible raw / fleet = {raw / fleet:.2f} (target ≥ 4): {verdict(raw / fleet >= 4)}")
        w1, w11 = g("warm 1", "fleet"), g("warm 11", "fleet")
        if w1 and w11:
            after = (w11 - w1) / 1000
            if n == 20:
                checks.append(f"- 20 hosts, warm: 10 commands per host after connecting = {after:.3f} s (target < 0.5 s): {verdict(after < 0.5)}")
            else:
                checks.append(f"- {n} hosts, warm: 10 commands per host after connecting = {after:.3f} s (no target; the 0.5 s target is for 20 hosts)")
        m = max((v for k, v in rss.items() if k.startswith(f"{n}|") and k.endswith("|fleet")), default=None)
        if m:
            checks.append(f"- {n} hosts: fleet's peak RSS {m / 1024:.0f} MB (target < 100 MB): {verdict(m / 1024 < 100)}")
    inv = med.get(f"{inv_hosts}|inventory|fleet")
    if inv:
        checks.append(f"- {inv_hosts} hosts, 200 groups: `fleet hosts all --json` {inv / 1000:.3f} s (target < 0.2 s): {verdict(inv < 200)}")
    st = med.get(f"{inv_hosts}|startup|fleet")
    if st:
        checks.append(f"- `fleet recipes` with 100 recipes: {st:.0f} ms (target < 100 ms): {verdict(st < 100)}")
    return "\n".join(lines) + "\n\nTargets:\n\n" + "\n".join(checks) + "\n"


def write_markdown(path, table, facts):
    begin, end = "<!-- bench/run: begin -->", "<!-- bench/run: end -->"
    section = (
        f"{begin}\n"
        f"Measured {facts['date']} by `bench/run` ({facts['runs']} runs per figure, medians):\n"
        f"{facts['cores']} cores ({facts['cpu']}), {facts['memory_gib']} GiB, Linux {facts['kernel']}, "
        f"{facts['openssh']}; {facts['fleet']}; {facts['ansible']}; {facts['pyinfra']}; {facts['python']}.\n\n"
        f"{table}\n![time against hosts](bench/compare.png)\n{end}"
    )
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: section, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n## fleet, Ansible and pyinfra side by side: `bench/run`\n\n" + section + "\n"
    path.write_text(text)


def chart(results, sizes, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    med = results["median_ms"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    # One colour per tool in every panel; fleet drawn heavier.
    colours = {"fleet": "black", "xargs ssh": "grey", "xargs scp": "grey", "ansible raw": "tab:orange",
               "ansible command": "tab:red", "ansible": "tab:red", "pyinfra": "tab:blue"}
    for ax, scenario in zip(axes, ["cold", "warm", "upload"]):
        tools = sorted({k.split("|")[2] for k in med if k.split("|")[1] == scenario})
        for tool in tools:
            xs = [n for n in sizes if f"{n}|{scenario}|{tool}" in med]
            ax.plot(xs, [med[f"{n}|{scenario}|{tool}"] / 1000 for n in xs], marker="o", label=tool,
                    color=colours.get(tool), linewidth=2.5 if tool == "fleet" else 1.2,
                    linestyle="--" if tool.startswith("xargs") else "-")
        ax.set_yscale("log")
        ax.set_title({"cold": "one command, new connections", "warm": "10 commands per host",
                      "upload": "1 MB upload per host"}[scenario])
        ax.set_xlabel("hosts")
        ax.set_ylabel("seconds (median, log scale)")
        ax.set_xticks(sizes)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
