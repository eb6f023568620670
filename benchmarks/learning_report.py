"""Offline checks and plots for the learning benchmark (``benchmarks/learning.py``).

* :func:`heldout_report` — without battles, on a held-out folder of trajectory files: does a
  trained run's critic approve the demonstrator's actions more than a random player's, is any
  frequent action slot approved almost always or almost never, and how much entropy does the
  policy keep compared with imitation? Works on any run directory::

      python benchmarks/learning_report.py heldout --run OUT/runs/tiny_agent_binary_rl_s0 \\
          --data OUT/data/heldout [--il_run OUT/runs/tiny_agent_il_s0] [--json_out X.json]

  ``--policy_run DIR [--policy_epoch N]`` scores the run's critic against another run's policy
  (:func:`use_policy_of`): the filter's V is under the run's own policy, so a policy that gets
  better than the data lowers every approval; under a fixed policy (e.g. the critic's starting
  point) what remains is how the critic ranks the two players' actions.

* :func:`heldout_curve` / :func:`plot_heldout_curve` — the held-out critic statistics at every
  checkpoint of one or more runs (critic argmax rate, normalised TD loss, approval gap, the lowest
  and highest approval of a frequent slot), to see whether more updates (or more data) move them::

      python benchmarks/learning_report.py heldout_curve --runs d1k=OUT/runs/A d5k=OUT/runs/B \
          --data OUT/data/heldout --out OUT/plots/heldout_curve.png [--json_out X.json] [--offset d5k 3000]

* :func:`plot_diagnostics` — learning curves of the agent's diagnostics (approval, normalised TD
  loss, entropy, log π(data), critic-argmax rate, pre-clip grad norms, ...) from each run's
  ``logs/metrics.csv`` (the Experiment's long-format log: ``key, epoch, gradient_steps, metric,
  value``), one PNG per panel group, one line per run::

      python benchmarks/learning_report.py plots --runs OUT/runs/* --out OUT/plots

Held-out groups: a file belongs to a group when its recording player's name (the trajectory
file name's player field) starts with the group's prefix, the first 8 letters of the baseline's
name as generated usernames carry them (``RandomBa…``, ``GymLeade…``). Every step with a known
action counts; a battle longer than the run's context is cut into consecutive windows of
``max_seq_len`` transitions (each window starts with its real time index, as training windows do).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections import defaultdict
from pathlib import Path
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import torch
from tqdm import tqdm

from metamon.amago.diagnostics import StepDiagnostics, summarize
from metamon.amago.loading import RLData, RLData_pad_collate
from metamon.data.parsed_replay_dset import ParsedReplayDataset
from metamon.data.trajectory_file import parse_trajectory_filename
from metamon.rl.dataset import MetamonAMAGODataset
from metamon.rl.run_dir import available_epochs, build_spaces, load_agent

DEFAULT_GROUPS = {"random": "RandomBa", "demonstrator": "GymLeade"}
SLOT_SHARE_MIN = 0.05       # slots holding at least this share of the held-out steps are checked
SLOT_APPROVAL_BOUNDS = (0.10, 0.90)
GAP_MIN_POINTS = 20.0       # approval(demonstrator) − approval(random) the gap check asks for
POLICY_MODULES = ("tstep_encoder", "traj_encoder", "actor", "target_actor")  # the policy's side of an Agent

PANELS = {
    "approval": ["Approval (test-time gamma)", "Approval When Policy Agrees (test-time gamma)",
                 "Approval When Policy Disagrees (test-time gamma)"],
    "critic": ["Normalised TD Loss (test-time gamma)", "Normalised TD Loss (mean over gammas)",
               "Data Action Is Critic Argmax (test-time gamma)", "Filter Gate TD EMA"],
    "policy": ["Policy Entropy (test-time gamma)", "Log Pi(data) (test-time gamma)",
               "Policy Agrees With Data (test-time gamma)"],
    "advantage": ["Advantage Mean (test-time gamma)", "Advantage Std (test-time gamma)",
                  "Advantage q05 (test-time gamma)", "Advantage q95 (test-time gamma)"],
    "grad_norms": ["Actor Grad Norm", "Critic Grad Norm", "TrajEncoder Grad Norm",
                   "TstepEncoder Grad Norm", "Global Grad Norm (pre-clip)"],
    "losses": ["Actor Loss", "Critic Loss", "Filter Gate Open", "Critic Warm-up Active"],
}


# ------------------------------------------------------------------------------------ held-out


def _windows(traj: RLData, length: int) -> list[RLData]:
    """Consecutive windows of at most ``length`` transitions covering every transition once."""
    n = len(traj)
    out = []
    for start in range(0, max(n, 1), length):
        stop = min(start + length, n)
        out.append(RLData(
            obs={k: v[start: stop + 1] for k, v in traj.obs.items()},
            rews=traj.rews[start:stop], dones=traj.dones[start:stop], actions=traj.actions[start:stop],
            time_idxs=traj.time_idxs[start: stop + 1], rl2s=traj.rl2s[start: stop + 1],
        ))
    return out


@torch.no_grad()
def _group_steps(agent, adapter: MetamonAMAGODataset, data: ParsedReplayDataset, paths: Sequence[str],
                 batch_windows: int) -> Optional[StepDiagnostics]:
    windows = []
    for path in paths:
        obs, actions, rewards, dones = data.load_item(path)
        windows += _windows(adapter.item_to_rldata(obs, actions, rewards, dones), agent.max_seq_len)
    parts = []
    for i in range(0, len(windows), batch_windows):
        batch = RLData_pad_collate(windows[i: i + batch_windows])
        parts.append(agent(batch, log_step=True).steps)
    return StepDiagnostics.cat(parts) if parts else None


def _group_of(path: str, groups: dict) -> Optional[str]:
    player = parse_trajectory_filename(path).player
    for name, prefix in groups.items():
        if player.startswith(prefix):
            return name
    return None


def use_policy_of(agent, other) -> None:
    """Give ``agent`` the policy of ``other`` (``POLICY_MODULES``: its encoders, actor and target
    actor), keeping its own critic, so that its advantage becomes
    A(s, a) = Q_agent(s, a) − Σ_a' π_other(a'|s) Q_agent(s, a').

    ``agent`` must read its critic through its own encoders (``separate_critic_encoder``): with
    shared encoders the critic's input would change with the policy. The two runs' policies must
    have the same architecture.
    """
    if not getattr(agent, "separate_critic_encoder", False):
        raise ValueError("another run's policy needs a critic with its own encoders "
                         "(agent.Agent.separate_critic_encoder = True); this run's critic shares the policy's")
    for name in POLICY_MODULES:
        try:
            getattr(agent, name).load_state_dict(getattr(other, name).state_dict())
        except RuntimeError as e:
            raise ValueError(f"the other run's {name} does not fit this run's: {e}") from e
    if getattr(agent, "advantage_reference", None) is not None:  # advantage_policy="initial": V reads the copy
        agent.set_advantage_reference()


def heldout_report(
    run_dir,
    data_dir,
    il_run_dir=None,
    epoch: Optional[int] = None,
    battle_format: str = "gen1ou",
    groups: Optional[dict] = None,
    batch_windows: int = 16,
    policy_run_dir=None,
    policy_epoch: Optional[int] = None,
) -> dict:
    """The held-out checks of a run (module docstring) as a JSON-ready dict.

    ``data_dir`` holds ``{battle_format}/`` trajectory files (e.g. RandomBaseline-vs-GymLeader
    battles and a GymLeader mirror, generated with another seed than the training data).
    Reported at the test-time head: ``steps`` and ``approval`` per group, ``approval_gap_points``
    (demonstrator − random, in points), ``slots`` (share of the held-out steps and approval per
    action slot, all groups pooled, and under ``by_group`` each group's steps and approval in that
    slot: whether a slot's approval still tells the players apart), ``entropy`` /
    ``log_pi_data`` / ``critic_argmax_rate`` / ``normalised_td_loss`` on all steps,
    ``policy_by_group`` (per group: ``log_pi_data`` and ``agrees``, how often the policy's argmax
    is that player's action; a filter that works raises them on the demonstrator's steps and
    lowers them on the random player's), ``il_entropy`` and ``entropy_ratio_vs_il`` when
    ``il_run_dir`` is given, and ``checks``:

    * ``random_approval_20_points_below``: approval(random) ≤ approval(demonstrator) − 20 points;
    * ``slot_approval_within_10_90``: every slot with ≥ 5 % of the steps is approved 10–90 %;
    * ``entropy_above_half_of_il``: entropy ≥ ½ IL's (only with ``il_run_dir``).

    A run without a critic (IL) reports only the policy statistics. With ``policy_run_dir``
    (epoch ``policy_epoch``, default its latest) the run's critic is scored against that run's
    policy (:func:`use_policy_of`): the policy statistics are then that run's, and the report
    names it under ``policy_run``.
    """
    groups = dict(groups or DEFAULT_GROUPS)
    agent, info = load_agent(run_dir, epoch)
    if policy_run_dir is not None:
        use_policy_of(agent, load_agent(policy_run_dir, policy_epoch)[0])
    obs_space, action_space, reward_function = build_spaces(info)
    data = ParsedReplayDataset(obs_space, action_space, reward_function, dset_root=data_dir,
                               formats=[battle_format], max_seq_len=None)
    adapter = MetamonAMAGODataset(data, action_space)
    by_group = defaultdict(list)
    for path in data.filenames:
        group = _group_of(path, groups)
        if group is not None:
            by_group[group].append(path)
    steps = {g: _group_steps(agent, adapter, data, paths, batch_windows) for g, paths in sorted(by_group.items())}
    steps = {g: s for g, s in steps.items() if s is not None and s.num_steps}
    if not steps:
        raise ValueError(f"no held-out file in {data_dir}/{battle_format} matches the groups {groups}")
    gammas = agent.gammas.tolist()
    pooled = StepDiagnostics.cat(list(steps.values()))
    overall = summarize(pooled, gammas, agent.action_dim)
    per_group = {g: summarize(s, gammas, agent.action_dim) for g, s in steps.items()}
    report = {
        "run": str(run_dir),
        "files": {g: len(p) for g, p in by_group.items()},
        "steps": {g: s.num_steps for g, s in steps.items()},
        "entropy": overall.get("Policy Entropy (test-time gamma)"),
        "log_pi_data": overall.get("Log Pi(data) (test-time gamma)"),
        "policy_agrees_with_data": overall.get("Policy Agrees With Data (test-time gamma)"),
        "critic_argmax_rate": overall.get("Data Action Is Critic Argmax (test-time gamma)"),
        "normalised_td_loss": overall.get("Normalised TD Loss (test-time gamma)"),
        "policy_by_group": {g: {"log_pi_data": m.get("Log Pi(data) (test-time gamma)"),
                                "agrees": m.get("Policy Agrees With Data (test-time gamma)")}
                            for g, m in per_group.items()},
        "checks": {},
    }
    if policy_run_dir is not None:
        report["policy_run"] = str(policy_run_dir)
    if pooled.adv is not None:
        report["approval"] = {g: m.get("Approval (test-time gamma)") for g, m in per_group.items()}
        report["slots"] = [
            {"slot": a, "share": overall[f"Data Share Slot {a}"],
             "approval": overall.get(f"Approval Slot {a} (test-time gamma)"),
             "by_group": {g: {"steps": round(m[f"Data Share Slot {a}"] * steps[g].num_steps),
                              "approval": m.get(f"Approval Slot {a} (test-time gamma)")}
                          for g, m in per_group.items() if m.get(f"Data Share Slot {a}")}}
            for a in range(agent.action_dim) if f"Data Share Slot {a}" in overall
        ]
        low, high = SLOT_APPROVAL_BOUNDS
        report["checks"]["slot_approval_within_10_90"] = all(
            low <= s["approval"] <= high for s in report["slots"] if s["share"] >= SLOT_SHARE_MIN)
        if "random" in report["approval"] and "demonstrator" in report["approval"]:
            gap = 100.0 * (report["approval"]["demonstrator"] - report["approval"]["random"])
            report["approval_gap_points"] = gap
            report["checks"]["random_approval_20_points_below"] = gap >= GAP_MIN_POINTS
    if il_run_dir is not None:
        il = heldout_report(il_run_dir, data_dir, epoch=None, battle_format=battle_format, groups=groups,
                            batch_windows=batch_windows)
        report["il_entropy"] = il["entropy"]
        report["entropy_ratio_vs_il"] = report["entropy"] / il["entropy"] if il["entropy"] else math.nan
        report["checks"]["entropy_above_half_of_il"] = report["entropy_ratio_vs_il"] >= 0.5
    return report


CURVE_PANELS = {  # heldout_curve's points: key -> panel title
    "critic_argmax_rate": "data action = critic argmax (chance ≈ 1 / legal actions)",
    "normalised_td_loss": "normalised TD loss",
    "approval_gap_points": "approval gap, demonstrator − random (points; target ≥ 20)",
    "slot_approval_range": "approval of the slots with ≥ 5 % of the steps (target 10–90 %)",
}


def curve_point(report: dict, updates: int) -> dict:
    """The numbers of one held-out report that :func:`plot_heldout_curve` draws, at ``updates``:
    ``slot_approval_range`` is (lowest, highest) approval over the slots holding ≥ 5 % of the
    steps (the slot check's slots), None without a critic or such slots."""
    frequent = [s["approval"] for s in report.get("slots", []) if s["share"] >= SLOT_SHARE_MIN]
    return {"updates": updates, **{k: report.get(k) for k in CURVE_PANELS if k != "slot_approval_range"},
            "slot_approval_range": (min(frequent), max(frequent)) if frequent else None}


def heldout_curve(run_dirs: dict, data_dir, steps_per_epoch: int, epochs: Optional[Sequence[int]] = None,
                  battle_format: str = "gen1ou", offsets: Optional[dict] = None) -> dict:
    """``{label: [curve_point, ...]}``: :func:`heldout_report` at each checkpoint of each run
    (``run_dirs``: label -> run directory; ``epochs``: the same for every run, default each run's
    available ones), at updates = offset + (epoch + 1) · ``steps_per_epoch`` (epoch N's checkpoint is
    written after N + 1 epochs; ``offsets``: label -> the updates before the run, e.g. of the
    checkpoint it was forked from, default 0)."""
    curves = {}
    for label, run_dir in run_dirs.items():
        have = available_epochs(run_dir)
        wanted = have if epochs is None else list(epochs)
        missing = sorted(set(wanted) - set(have))
        if missing:
            raise ValueError(f"{run_dir} has no checkpoint for epochs {missing} (available: {have})")
        curves[label] = [curve_point(heldout_report(run_dir, data_dir, epoch=e, battle_format=battle_format),
                                     (offsets or {}).get(label, 0) + (e + 1) * steps_per_epoch)
                          for e in tqdm(wanted, desc=label)]
    return curves


def plot_heldout_curve(curves: dict, out_path) -> str:
    """One PNG, a subplot per ``CURVE_PANELS`` entry, a line per run (the slot panel: a band from
    the lowest to the highest frequent slot's approval, with the 10 % and 90 % bounds dashed;
    the gap panel: the 20-point target dashed). Returns the path."""
    plt.switch_backend("Agg")
    fig, axes = plt.subplots(1, len(CURVE_PANELS), figsize=(4.2 * len(CURVE_PANELS), 3.6), layout="constrained")
    for i, (label, points) in enumerate(curves.items()):
        color = f"C{i % 10}"
        for ax, key in zip(axes, CURVE_PANELS):
            pts = [(p["updates"], p[key]) for p in points if p.get(key) is not None]
            if not pts:
                continue
            xs, ys = zip(*pts)
            if key == "slot_approval_range":
                ax.fill_between(xs, [100 * y[0] for y in ys], [100 * y[1] for y in ys], color=color, alpha=0.25)
                ax.plot(xs, [100 * y[0] for y in ys], xs, [100 * y[1] for y in ys], color=color, marker=".")
            else:
                ax.plot(xs, ys, color=color, marker=".", label=label)
    for ax, (key, title) in zip(axes, CURVE_PANELS.items()):
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("updates", fontsize=8)
        ax.tick_params(labelsize=7)
        targets = {"approval_gap_points": (GAP_MIN_POINTS,),
                   "slot_approval_range": tuple(100 * b for b in SLOT_APPROVAL_BOUNDS)}
        for bound in targets.get(key, ()):
            ax.axhline(bound, color="grey", linestyle="--", linewidth=0.8)
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=7, loc="outside lower center",
               ncol=min(len(curves), 6))
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return str(out_path)


# --------------------------------------------------------------------------------------- plots


def read_metrics(run_dir, key: str = "train-update", offset: int = 0) -> dict[str, list[tuple[int, float]]]:
    """``{metric: [(gradient_steps + offset, value), ...]}`` of ``run_dir/logs/metrics.csv`` rows with
    ``key`` (``offset``: the updates before this run, e.g. of the checkpoint it started from)."""
    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    path = Path(run_dir) / "logs" / "metrics.csv"
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row["key"] == key:
                out[row["metric"]].append((int(row["gradient_steps"]) + offset, float(row["value"])))
    return dict(out)


def plot_diagnostics(run_dirs: dict, out_dir, panels: Optional[dict] = None,
                     offsets: Optional[dict] = None) -> list[str]:
    """One PNG per panel group (``PANELS``), a subplot per metric, a line per run
    (``run_dirs``: label -> run directory; ``offsets``: label -> updates its x axis starts at, for a
    run that continues another's checkpoint). Metrics a run never logged are skipped.
    Returns the written paths."""
    plt.switch_backend("Agg")  # files only, no display
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    curves = {label: read_metrics(d, offset=(offsets or {}).get(label, 0)) for label, d in run_dirs.items()}
    colors = {label: f"C{i % 10}" for i, label in enumerate(curves)}  # one colour per run in every panel
    written = []
    for panel, metrics in (panels or PANELS).items():
        present = [m for m in metrics if any(m in c for c in curves.values())]
        if not present:
            continue
        fig, axes = plt.subplots(1, len(present), figsize=(4.2 * len(present), 3.6), squeeze=False,
                                 layout="constrained")
        for ax, metric in zip(axes[0], present):
            for label, c in curves.items():
                if metric in c:
                    xs, ys = zip(*c[metric])
                    ax.plot(xs, ys, label=label, color=colors[label], marker="." if len(xs) < 30 else None)
            ax.set_title(metric, fontsize=8)
            ax.set_xlabel("updates", fontsize=8)
            ax.tick_params(labelsize=7)
        handles = [plt.Line2D([], [], color=colors[label]) for label in curves]
        fig.legend(handles, list(curves), fontsize=7, loc="outside lower center", ncol=min(len(curves), 6))
        path = out_dir / f"{panel}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))
    return written


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    h = sub.add_parser("heldout", help="held-out approval / slot / entropy checks of a run")
    h.add_argument("--run", required=True)
    h.add_argument("--data", required=True)
    h.add_argument("--il_run", default=None)
    h.add_argument("--epoch", type=int, default=None)
    h.add_argument("--battle_format", default="gen1ou")
    h.add_argument("--json_out", default=None)
    h.add_argument("--policy_run", default=None,
                   help="score the run's critic against this run's policy (needs separate critic encoders)")
    h.add_argument("--policy_epoch", type=int, default=None)
    hc = sub.add_parser("heldout_curve", help="held-out critic statistics at every checkpoint of runs")
    hc.add_argument("--runs", nargs="+", required=True, metavar="LABEL=DIR")
    hc.add_argument("--data", required=True)
    hc.add_argument("--out", required=True, help="the PNG to write")
    hc.add_argument("--steps_per_epoch", type=int, default=500, help="updates per epoch of the runs")
    hc.add_argument("--epochs", type=int, nargs="+", default=None, help="default: every checkpoint")
    hc.add_argument("--battle_format", default="gen1ou")
    hc.add_argument("--json_out", default=None)
    hc.add_argument("--offset", nargs=2, action="append", default=[], metavar=("LABEL", "UPDATES"),
                    help="start one run's x axis at UPDATES, e.g. a fork of a checkpoint")
    pl = sub.add_parser("plots", help="learning curves of the diagnostics")
    pl.add_argument("--runs", nargs="+", required=True)
    pl.add_argument("--out", required=True)
    pl.add_argument("--offset", nargs=2, action="append", default=[], metavar=("RUN", "UPDATES"),
                    help="shift one run's curves (named by its folder) by UPDATES, e.g. a fork of a checkpoint")
    args = p.parse_args(argv)
    if args.command == "heldout":
        try:
            report = heldout_report(args.run, args.data, args.il_run, args.epoch, args.battle_format,
                                    policy_run_dir=args.policy_run, policy_epoch=args.policy_epoch)
        except ValueError as e:
            print(f"learning_report heldout: {e}", file=sys.stderr)
            return 2
        text = json.dumps(report, indent=2)
        print(text)
        if args.json_out:
            Path(args.json_out).write_text(text + "\n")
    elif args.command == "heldout_curve":
        run_dirs = {}
        for entry in args.runs:
            label, sep, run_dir = entry.partition("=")
            if not sep or not label or not run_dir or label in run_dirs:
                print(f"learning_report heldout_curve: --runs takes distinct LABEL=DIR entries, got {entry!r}",
                      file=sys.stderr)
                return 2
            run_dirs[label] = run_dir
        try:
            unknown = sorted({label for label, _ in args.offset} - set(run_dirs))
            if unknown:
                raise ValueError(f"--offset names runs that --runs does not: {unknown}")
            curves = heldout_curve(run_dirs, args.data, args.steps_per_epoch, args.epochs, args.battle_format,
                                   offsets={label: int(updates) for label, updates in args.offset})
        except ValueError as e:
            print(f"learning_report heldout_curve: {e}", file=sys.stderr)
            return 2
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(curves, indent=2) + "\n")
        print(plot_heldout_curve(curves, args.out))
    else:
        offsets = {name: int(updates) for name, updates in args.offset}
        for path in plot_diagnostics({Path(r).name: r for r in args.runs}, args.out, offsets=offsets):
            print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
