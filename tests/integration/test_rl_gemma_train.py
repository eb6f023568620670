"""The tiny Gemma agent end to end: generated battles -> metamon.rl.train (IL) -> lower loss ->
checkpoint -> load_agent -> the same greedy actions -> export_gemma."""

import torch

from metamon.data.generate import generate
from metamon.rl.export_gemma import main as export_main
from metamon.rl.gemma_tiny import save_tiny_gemma
from metamon.rl.run_dir import available_epochs, load_agent
from metamon.rl.train import TrainConfig, build_experiment

FMT = "gen1ou"



def _il_loss(experiment, batch) -> float:
    experiment.policy_aclr.eval()
    with torch.no_grad():
        return float(experiment.compute_loss(batch, log_step=False)["Actor Loss"])


def test_tiny_gemma_il_run(showdown_server, tmp_path):
    data = tmp_path / "data"
    summary = generate("GymLeader", "Grunt", FMT, 4, data, server_url=f"{showdown_server.host}:{showdown_server.port}",
                       seed=0, show_progress=False)
    assert summary.files_written == 8
    gemma = save_tiny_gemma(tmp_path / "gemma")
    config = TrainConfig(
        run_name="gemma_il", save_dir=str(tmp_path / "runs"),
        model_gin_config="gemma_tiny_agent.gin", train_gin_config="il.gin",
        gin_bindings=[
            f"GemmaTstepEncoder.model_name = '{gemma}'",
            "GemmaTstepEncoder.tokenizer = 'metamon-gemma-v1'",
            "MetamonAMAGOExperiment.lr_warmup_steps = 1",
            "MetamonAMAGOExperiment.learning_rate = 3e-3",
        ],
        parsed_replay_dir=str(data), formats=[FMT], epochs=2, steps_per_epoch=15,
        batch_size_per_gpu=4, dloader_workers=0, ckpt_interval=1, eval_gens=[], seed=0,
    )
    experiment = build_experiment(config)
    try:
        experiment.start()
        torch.manual_seed(0)
        batch = next(iter(experiment.train_dloader)).to("cpu")
        before = _il_loss(experiment, batch)
        experiment.learn()
        after = _il_loss(experiment, batch)
        policy = experiment.policy.eval()
    finally:
        experiment.close()
    assert after < before - 0.05, (before, after)

    run_dir = tmp_path / "runs" / "gemma_il"
    assert available_epochs(run_dir) == [0, 1]
    agent, info = load_agent(run_dir)
    assert type(agent.tstep_encoder).__name__ == "GemmaTstepEncoder" and info.max_seq_len == 16
    with torch.no_grad():
        want, _ = policy.get_actions(batch.obs, batch.rl2s, batch.time_idxs, sample=False)
        got, _ = agent.get_actions(batch.obs, batch.rl2s, batch.time_idxs, sample=False)
        emb_want = policy.tstep_encoder(batch.obs, batch.rl2s)
        emb_got = agent.tstep_encoder(batch.obs, batch.rl2s)
    assert torch.equal(got, want)
    assert torch.equal(emb_got, emb_want)

    out = tmp_path / "export"
    assert export_main(["--run_dir", str(run_dir), "--out", str(out)]) == 0
    assert (out / "gemma" / "adapter_model.safetensors").is_file()
    assert (out / "heads.safetensors").is_file() and (out / "config.gin").is_file()
    assert export_main(["--run_dir", str(run_dir), "--ckpt", "7", "--out", str(out)]) == 2
