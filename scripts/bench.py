#!/usr/bin/env python3
"""braid side by side with notmuch, neomutt and mbsync on the same generated Maildir.

Run through scripts/bench.sh (it installs the peers and builds braid); see BENCHMARKS.md.
For each size it writes the deterministic Maildir once (examples/gen_maildir.rs), then:

  import   `braid import maildir` vs `notmuch new`, each into a fresh store/database
  search   20 fixed queries, `braid search --json` vs `notmuch search --format=json`
  open     launch -> the message list on screen, braid's TUI vs neomutt (header cache warm),
           in a real terminal (tmux), and the peak RSS of both with the mailbox open
  imap     initial IMAP sync from a local Dovecot, braid vs mbsync (scripts/bench-imap.sh)
  keys     key press -> frame and start -> first frame in braid alone (benches/tui.rs)

Every braid/peer pair runs in alternation (braid first on odd runs, the peer first on even
ones) on the same bytes, page cache warm for both. Writes OUT/results.json (every sample),
OUT/results.md (the tables) and OUT/chart.png (each figure against the data size).
"""

import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BRAID = Path(os.environ.get("BRAID_BIN", ROOT / "target/release/braid"))
GEN = ROOT / "target/release/examples/gen_maildir"
DATA = ROOT / "target/bench-data"
ME = "support@braid.test"
COLS, LINES = 160, 45


def say(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def die(msg):
    say(f"error: {msg}")
    sys.exit(1)


def human(n):
    return f"{n // 1000}k" if n < 1_000_000 else f"{n // 1_000_000}M"


def stats(xs):
    """median, p95 (nearest rank), min, max of the samples."""
    v = sorted(xs)
    p95 = v[max(0, math.ceil(0.95 * len(v)) - 1)]
    return {"n": len(v), "median": statistics.median(v), "p95": p95, "min": v[0], "max": v[-1]}


def timed(cmd, env=None, cwd=None, check=True):
    t = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t
    if check and p.returncode != 0:
        die(f"{cmd[0]} failed ({p.returncode}): {p.stderr.decode(errors='replace')[-2000:]}")
    return dt, p.stdout


def braid_env():
    env = dict(os.environ)
    env.pop("BRAID_CONFIG", None)
    env.pop("BRAID_DATA_DIR", None)
    return env


# ------------------------------------------------------------------------------ the data


def maildir(n):
    d = DATA / f"maildir-v2-{n}"
    if not (d / "complete").exists():
        shutil.rmtree(d, ignore_errors=True)
        say(f"writing the {n:,}-message Maildir to {d}")
        subprocess.run([str(GEN), str(d), str(n)], check=True, stdout=sys.stderr)
        (d / "complete").write_text("")
    return d


def count_files(d):
    return sum(len(os.listdir(d / sub)) for sub in ["cur", "new", ".Sent/cur", ".Sent/new"] if (d / sub).is_dir())


def notmuch_config(work, mail):
    db = work / "notmuch-db"
    cfg = work / "notmuch-config"
    cfg.write_text(
        f"[database]\npath={db}\nmail_root={mail}\n"
        "[new]\ntags=inbox;\nignore=complete\n"
        "[search]\nexclude_tags=\n"
        "[maildir]\nsynchronize_flags=false\n"
        f"[user]\nname=Support\nprimary_email={ME}\n"
    )
    return cfg, db


# ------------------------------------------------------------------------------- import


def bench_import(n, mail, work, runs, reuse_peer=False):
    files = count_files(mail)
    cfg, db = notmuch_config(work, mail)
    nm_env = dict(os.environ, NOTMUCH_CONFIG=str(cfg))
    store = work / "braid-data"
    b, m = [], []

    def run_braid():
        shutil.rmtree(store, ignore_errors=True)
        dt, out = timed([str(BRAID), "--data-dir", str(store), "import", "maildir", str(mail),
                         "--me", ME, "--json"], env=braid_env())
        got = json.loads(out)
        if got["stored"] + got["duplicates"] != files or got["skipped"]:
            die(f"braid imported {got['stored']} (+{got['duplicates']} duplicates) of {files}")
        b.append(files / dt)
        return dt

    def run_notmuch():
        shutil.rmtree(db, ignore_errors=True)
        db.mkdir(parents=True)
        dt, _ = timed(["notmuch", "new", "--quiet"], env=nm_env)
        _, out = timed(["notmuch", "count", "--output=files", "*"], env=nm_env)
        if int(out) != files:
            die(f"notmuch indexed {int(out)} of {files} files")
        m.append(files / dt)
        return dt

    if reuse_peer and db.is_dir():
        _, out = timed(["notmuch", "count", "--output=files", "*"], env=nm_env, check=False)
        if out.strip() == str(files).encode():
            say(f"import {human(n)}: reusing notmuch's database in {db}")
            t = run_braid()
            say(f"import {human(n)}: braid {t:.2f} s")
            return {"files": files, "braid": b, "peer": m}, store, nm_env
    for r in range(runs):
        order = [run_braid, run_notmuch] if r % 2 == 0 else [run_notmuch, run_braid]
        times = [f() for f in order]
        say(f"import {human(n)} run {r + 1}/{runs}: " + ", ".join(
            f"{f.__name__[4:]} {t:.2f} s" for f, t in zip(order, times)))
    return {"files": files, "braid": b, "peer": m}, store, nm_env


# ------------------------------------------------------------------------------- search


def day(ts):
    return time.strftime("%Y-%m-%d", time.gmtime(ts))


def queries(n, mail):
    """The 20 queries, in braid's and notmuch's syntax. Dates are relative to the newest mail;
    braid's `before:` is exclusive, notmuch's `date:A..B` includes day B."""
    terms = json.loads(subprocess.check_output([str(GEN), "--terms"]))
    # The generator spaces messages 37 s apart from 1,600,000,000 (2020-09-13): 10k span 4 days,
    # 1M 428 days. Date bounds are fractions of that span, whole days.
    first, span = 1_600_000_000, (n - 1) * 37
    d = lambda frac: day(first + frac * span)
    nd = lambda frac: day(first + frac * span - 86400)  # notmuch's inclusive end day
    # An order number some customer quotes (their mail is in every size).
    order = None
    for f in sorted(os.listdir(mail / "cur"))[:200]:
        hit = re.search(rb"[Oo]rder (?:is )?(\d{5,6})\b", (mail / "cur" / f).read_bytes())
        if hit:
            order = hit.group(1).decode()
            break
    return [
        ("common word", "refund", "refund"),
        ("very common word", "dashboard", "dashboard"),
        ("two words", "blue shipped", "blue shipped"),
        ("common product name", terms["common"], terms["common"]),
        ("medium product name", terms["medium"], terms["medium"]),
        ("rare product name", terms["rare"], terms["rare"]),
        ("order number", order, order),
        ("non-ASCII word", "münchen", "münchen"),
        ("no match", "zqxwvj", "zqxwvj"),
        ("phrase", '"tracking number"', '"tracking number"'),
        ("long phrase", '"the box was crushed"', '"the box was crushed"'),
        ("prefix", "ref*", "ref*"),
        ("short prefix", "da*", "da*"),
        ("sender: domain", "from:example42.com", "from:example42.com"),
        ("sender: first name", "from:greta", "from:greta"),
        ("sender: address", f"from:{terms['address']}", f"from:{terms['address']}"),
        ("date range (a tenth of the span)", f"after:{d(0.5)} before:{d(0.6)}", f"date:{d(0.5)}..{nd(0.6)}"),
        ("word + date range", f"invoice after:{d(0.8)}", f"invoice date:{d(0.8)}.."),
        ("word + sender", "refund from:example42.com", "refund from:example42.com"),
        ("product + sender domain", f"{terms['common']} from:work7.example.org",
         f"{terms['common']} from:work7.example.org"),
    ]


def bench_search(n, mail, store, nm_env, reps):
    qs = queries(n, mail)
    per = []
    for label, bq, nq in qs:
        b, m, bh, mh = [], [], 0, 0
        for r in range(reps):
            def run_braid():
                dt, out = timed([str(BRAID), "--data-dir", str(store), "search", "--json",
                                 "--limit", "50", bq], env=braid_env())
                return dt, len(json.loads(out)["hits"])

            def run_notmuch():
                dt, out = timed(["notmuch", "search", "--format=json", "--limit=50", nq], env=nm_env)
                return dt, len(json.loads(out))

            if r % 2 == 0:
                (tb, bh), (tm, mh) = run_braid(), run_notmuch()
            else:
                (tm, mh), (tb, bh) = run_notmuch(), run_braid()
            b.append(tb * 1e3)
            m.append(tm * 1e3)
        per.append({"label": label, "braid_query": bq, "notmuch_query": nq,
                    "braid_hits": bh, "notmuch_hits": mh, "braid": b, "peer": m})
        say(f"search {human(n)} {label}: braid {statistics.median(b):.1f} ms ({bh} hits), "
            f"notmuch {statistics.median(m):.1f} ms ({mh} threads)")
    return per


# --------------------------------------------------------------------------- open + RSS


class Tmux:
    def __init__(self, name):
        self.sock = f"braid-bench-{name}-{os.getpid()}"

    def __call__(self, *args, check=True):
        return subprocess.run(["tmux", "-L", self.sock, *args], check=check,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode(errors="replace")

    def start(self, cmd, env):
        envs = " ".join(f"{k}={v}" for k, v in env.items())
        self("new-session", "-d", "-x", str(COLS), "-y", str(LINES),
             f"exec env {envs} {cmd}")

    def screen(self):
        return self("capture-pane", "-p", check=False)

    def pid(self):
        return int(self("list-panes", "-F", "#{pane_pid}").split()[0])

    def kill(self):
        self("kill-server", check=False)


def vm_hwm_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_once(tool, cmd, env, ready, moves, timeout):
    """Launch in a fresh tmux server; seconds until `ready(screen)`, then the peak RSS after
    `moves` (a list of tmux key names) have been shown."""
    tm = Tmux(tool)
    tm.kill()
    t0 = time.perf_counter()
    tm.start(cmd, env)
    while True:
        s = tm.screen()
        if ready(s):
            dt = time.perf_counter() - t0
            break
        if time.perf_counter() - t0 > timeout:
            tm.kill()
            die(f"{tool} did not show its list within {timeout} s; screen:\n{s}")
        time.sleep(0.002)
    pid = tm.pid()
    for k in moves:
        tm("send-keys", k)
    time.sleep(1.0)
    rss = vm_hwm_mb(pid)
    tm.kill()
    return dt, rss


def bench_open(n, mail, store, work, runs):
    hcache = work / "neomutt-hcache"
    muttrc = work / "muttrc"
    muttrc.write_text(
        f"set mbox_type=Maildir\nset folder={mail}\nset spoolfile={mail}\n"
        f"set header_cache={hcache}\nset sort=date\nset mail_check_stats=no\n"
        "set quit=yes\nset help=yes\nset confirmappend=no\n"
    )
    timeout = max(60, n / 2000)
    braid_cmd = f"{BRAID} --data-dir {store}"
    neomutt_cmd = f"neomutt -n -F {muttrc} -f {mail}"
    # braid: the status line and the queue's first row; neomutt: its status line with the count.
    braid_ready = lambda s: "NORMAL" in s and re.search(r"open · 1/[0-9]", s) is not None
    neomutt_ready = lambda s: "-NeoMutt:" in s and "[Msgs:" in s
    moves = ["j"] * 50 + ["End"]
    env = {"TERM": "tmux-256color", "HOME": str(work), "LANG": "C.UTF-8"}
    # Warm neomutt's header cache (and both tools' page cache) once, untimed.
    say(f"open {human(n)}: building neomutt's header cache")
    t, _ = open_once("neomutt", neomutt_cmd, env, neomutt_ready, [], timeout * 4)
    say(f"open {human(n)}: neomutt's first open (cold header cache) {t:.2f} s")
    open_once("braid", braid_cmd, env, braid_ready, [], timeout)
    b, m, brss, mrss = [], [], [], []
    for r in range(runs):
        pair = [("braid", braid_cmd, braid_ready, b, brss), ("neomutt", neomutt_cmd, neomutt_ready, m, mrss)]
        if r % 2:
            pair.reverse()
        for tool, cmd, ready, times, rss in pair:
            dt, mb = open_once(tool, cmd, env, ready, moves, timeout)
            times.append(dt * 1e3)
            rss.append(mb)
        say(f"open {human(n)} run {r + 1}/{runs}: braid {b[-1]:.1f} ms {brss[-1]:.0f} MB, "
            f"neomutt {m[-1]:.1f} ms {mrss[-1]:.0f} MB")
    return {"braid": b, "peer": m}, {"braid": brss, "peer": mrss}


# --------------------------------------------------------------------------------- imap


def bench_imap(n, runs):
    out = DATA / f"imap-{n}.json"
    env = dict(os.environ, N=str(n), RUNS=str(runs), SKIP_BUILD="1", BENCH_JSON=str(out))
    subprocess.run([str(ROOT / "scripts/bench-imap.sh")], env=env, check=True, stdout=sys.stderr)
    got = json.loads(out.read_text())
    return {"messages": got["messages"], "braid": got["braid_ms"], "peer": got["mbsync_ms"],
            "peer_nofsync": got["mbsync_nofsync_ms"]}


# --------------------------------------------------------------------------------- keys


def bench_keys(n):
    out = DATA / f"tui-{n}.json"
    env = dict(os.environ, BRAID_BENCH_MESSAGES=str(n), BRAID_BENCH_ONLY="first,keys",
               BRAID_BENCH_JSON=str(out), BRAID_BENCH_RUNS="20")
    subprocess.run(["cargo", "bench", "--quiet", "--bench", "tui"], cwd=ROOT, env=env, check=True,
                   stdout=sys.stderr)
    rows = {r["label"]: r for r in json.loads(out.read_text())["rows"]}
    return {"first_frame": rows["5 START -> FRAME WITH QUEUE ROWS"],
            "key_frame": rows["KEY -> FRAME (UI task: handle + draw)"]}


# ------------------------------------------------------------------------------ reports

FIGURES = [
    # key, title, unit, better, target ratio (braid/peer), peer name
    ("import", "Import / index throughput", "messages/s", "higher", 2.0, "notmuch new"),
    ("search", "Search latency (20 queries, all samples)", "ms", "lower", 0.25, "notmuch search"),
    ("open", "Open to first screen (tmux)", "ms", "lower", 0.1, "neomutt (header cache warm)"),
    ("imap", "IMAP initial sync from Dovecot", "ms", "lower", 1.0, "mbsync"),
    ("memory", "Peak RSS with the mailbox open", "MB", "lower", 0.5, "neomutt"),
]


def fmt(x, unit):
    if unit == "messages/s":
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def ratio_str(r):
    """Two decimals, more for a ratio that would print as 0.00x."""
    return f"{r:.2f}x" if r >= 0.01 else f"{r:.3f}x"


def met(ratio, target, better):
    return ratio >= target if better == "higher" else ratio <= target


def measured(results):
    return [n for n in results["sizes"] if n in results["by_size"]]


def report(results, out):
    lines = ["# Results", "",
             f"{os.cpu_count()} cores; sizes {', '.join(human(int(n)) for n in measured(results))}; "
             f"generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", "",
             "| figure | size | braid median | p95 | min–max | peer | peer median | p95 | min–max | braid/peer | target | met |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, title, unit, better, target, peer in FIGURES:
        for n in measured(results):
            fig = results["by_size"][n].get(key)
            if not fig:
                continue
            if key == "search":
                bs = [x for q in fig for x in q["braid"]]
                ps = [x for q in fig for x in q["peer"]]
            else:
                bs, ps = fig["braid"], fig["peer"]
            b, p = stats(bs), stats(ps)
            ratio = b["median"] / p["median"]
            lines.append(
                f"| {title} ({unit}) | {human(int(n))} | {fmt(b['median'], unit)} | {fmt(b['p95'], unit)} | "
                f"{fmt(b['min'], unit)}–{fmt(b['max'], unit)} | {peer} | {fmt(p['median'], unit)} | "
                f"{fmt(p['p95'], unit)} | {fmt(p['min'], unit)}–{fmt(p['max'], unit)} | {ratio_str(ratio)} | "
                f"{'≥' if better == 'higher' else '≤'} {target}x | {'yes' if met(ratio, target, better) else '**no**'} |")
    lines += ["", "## braid alone: in-process TUI figures (benches/tui.rs, demo workspace of the same size)", "",
              "| size | start → first frame p50 | p95 | key → frame p50 | p99 | max | targets |",
              "|---|---|---|---|---|---|---|"]
    for n in measured(results):
        k = results["by_size"][n].get("keys")
        if k:
            f, kf = k["first_frame"], k["key_frame"]
            lines.append(f"| {human(int(n))} | {f['p50_ms']:.1f} ms | {f['p95_ms']:.1f} ms | {kf['p50_ms']:.3f} ms | "
                         f"{kf['p99_ms']:.3f} ms | {kf['max_ms']:.2f} ms | ≤ 150 ms; ≤ 2 ms p99 |")
    for n in measured(results):
        fig = results["by_size"][n].get("search")
        if not fig:
            continue
        lines += ["", f"## Search at {human(int(n))}: each query (median ms over {len(fig[0]['braid'])} runs; hits: braid messages, notmuch threads, both at most 50)", "",
                  "| query | braid | notmuch | braid ms | notmuch ms | ratio | hits b/n |", "|---|---|---|---|---|---|---|"]
        for q in fig:
            bm, pm = statistics.median(q["braid"]), statistics.median(q["peer"])
            lines.append(f"| {q['label']} | `{q['braid_query']}` | `{q['notmuch_query']}` | {bm:.1f} | {pm:.1f} | "
                         f"{ratio_str(bm / pm)} | {q['braid_hits']}/{q['notmuch_hits']} |")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    return "\n".join(lines)


def chart(results, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        say("matplotlib missing: no chart (scripts/bench.sh installs it)")
        return
    figs = [f for f in FIGURES if any(f[0] in results["by_size"][n] for n in measured(results))]
    has_keys = any("keys" in results["by_size"][n] for n in measured(results))
    cells = len(figs) + (1 if has_keys else 0)
    cols = 3
    rows = math.ceil(cells / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(15, 4.6 * rows), squeeze=False)
    for ax in axes.flat[cells:]:
        ax.axis("off")
    for ax, (key, title, unit, better, target, peer) in zip(axes.flat, figs):
        xs, bmed, pmed = [], [], []
        for n in measured(results):
            f = results["by_size"][n].get(key)
            if not f:
                continue
            bs = [x for q in f for x in q["braid"]] if key == "search" else f["braid"]
            ps = [x for q in f for x in q["peer"]] if key == "search" else f["peer"]
            xs.append(int(n))
            bmed.append(statistics.median(bs))
            pmed.append(statistics.median(ps))
        ax.plot(xs, bmed, "o-", label="braid", color="#1f77b4", linewidth=2)
        ax.plot(xs, pmed, "s--", label=peer, color="#d62728", linewidth=2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{title}\n({better} is better; target braid/peer {'≥' if better == 'higher' else '≤'} {target}x)", fontsize=10)
        ax.set_xlabel("messages")
        ax.set_ylabel(f"median {unit}")
        for x, b, p in zip(xs, bmed, pmed):
            ax.annotate(ratio_str(b / p), (x, b), textcoords="offset points", xytext=(4, 6), fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    if has_keys:
        ax = axes.flat[len(figs)]
        xs = [int(n) for n in measured(results) if "keys" in results["by_size"][n]]
        ks = [results["by_size"][n]["keys"] for n in measured(results) if "keys" in results["by_size"][n]]
        ax.plot(xs, [k["first_frame"]["p50_ms"] for k in ks], "o-", label="start → first frame p50")
        ax.plot(xs, [k["key_frame"]["p99_ms"] for k in ks], "o-", label="key → frame p99")
        ax.axhline(150, color="gray", linestyle=":", label="150 ms target")
        ax.axhline(2, color="gray", linestyle="--", label="2 ms target")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title("braid's TUI in process (lower is better)", fontsize=10)
        ax.set_xlabel("messages")
        ax.set_ylabel("ms")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"braid vs notmuch, neomutt, mbsync on the same generated Maildir ({os.cpu_count()} cores)")
    fig.tight_layout()
    fig.savefig(out / "chart.png", dpi=90)
    say(f"chart: {out / 'chart.png'}")


# --------------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000", help="message counts (comma-separated)")
    ap.add_argument("--runs", type=int, default=3, help="repetitions of import/open/imap (1 at 1M for import)")
    ap.add_argument("--search-reps", type=int, default=5, help="repetitions of each search query")
    ap.add_argument("--only", default="import,search,open,imap,keys", help="figures to run")
    ap.add_argument("--imap-max", type=int, default=100_000, help="largest size for the IMAP figure")
    ap.add_argument("--out", default=str(ROOT / "target/bench-results"), help="where the results go")
    ap.add_argument("--resume", action="store_true",
                    help="keep the sizes OUT/results.json already holds and run the others")
    ap.add_argument("--rerun", action="store_true",
                    help="with --resume: run the --only figures again where they are held, keeping the "
                         "rest, and reuse notmuch's database of the last run for search and open")
    args = ap.parse_args()
    sizes = [int(s.replace("_", "").replace(",", "")) for s in args.sizes.split(",") if s]
    only = set(args.only.split(","))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for tool in ["notmuch", "neomutt", "mbsync", "tmux"]:
        if shutil.which(tool) is None:
            die(f"{tool} is not installed (scripts/bench.sh installs it)")
    if not BRAID.exists() or not GEN.exists():
        die("build braid first: cargo build --release --bin braid --example gen_maildir")
    results = {"sizes": sizes, "by_size": {}, "versions": {
        "braid": subprocess.check_output([str(BRAID), "--version"]).decode().strip(),
        "notmuch": subprocess.check_output(["notmuch", "--version"]).decode().strip(),
        "neomutt": subprocess.check_output(["neomutt", "-v"]).decode().splitlines()[0],
        "mbsync": subprocess.check_output(["mbsync", "--version"]).decode().strip(),
    }}
    if args.resume and (out / "results.json").exists():
        old = json.loads((out / "results.json").read_text())
        for n, by in old["by_size"].items():
            if int(n) in sizes:
                results["by_size"][int(n)] = by
                say(f"resume: keeping the {human(int(n))} results")
    for n in sizes:
        prev = results["by_size"].get(n)
        if prev is not None and not args.rerun:
            continue
        by = results["by_size"][n] = dict(prev or {})
        mail = maildir(n)
        work = DATA / f"bench-work-{n}"
        if prev is None:
            shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        runs = args.runs if n < 1_000_000 else 1
        if only & {"import", "search", "open"}:
            imported, store, nm_env = bench_import(n, mail, work, runs if "import" in only else 1,
                                                   reuse_peer=args.rerun and "import" not in only)
            if "import" in only:
                by["import"] = imported
        if "search" in only:
            by["search"] = bench_search(n, mail, store, nm_env, args.search_reps)
        if "open" in only:
            by["open"], by["memory"] = bench_open(n, mail, store, work, args.runs)
        if "imap" in only and n <= args.imap_max:
            by["imap"] = bench_imap(n, args.runs)
        if "keys" in only:
            by["keys"] = bench_keys(n)
        (out / "results.json").write_text(json.dumps(results, indent=1))
        report(results, out)
    print(report(results, out))
    chart(results, out)


if __name__ == "__main__":
    main()
