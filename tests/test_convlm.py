"""genoml's convolutional masked LM (`pretrain --arch cnn`): padding exactness, dilations, native reload, and the
pretrain -> finetune path through the CLI."""

from __future__ import annotations

import pytest
import torch

from genoml.archs.convlm import ConvLMConfig, ConvLMForMaskedLM, ConvLMModel
from tests.test_pretrain import dna_fasta  # noqa: F401  (fixture)


def tiny(**kw) -> ConvLMConfig:
    return ConvLMConfig(
        vocab_size=10, hidden_size=16, num_hidden_layers=5, kernel_size=3, max_dilation=4, **kw
    )


def test_dilations_double_then_repeat():
    assert [tiny().dilation(i) for i in range(7)] == [1, 2, 4, 1, 2, 4, 1]
    assert [ConvLMConfig(max_dilation=1).dilation(i) for i in range(3)] == [1, 1, 1]


def test_right_padding_does_not_change_real_positions():
    torch.manual_seed(0)
    model = ConvLMForMaskedLM(tiny(hidden_dropout_prob=0.0)).eval()
    ids = torch.randint(2, 10, (3, 11))  # (B, L)
    alone = model(input_ids=ids).logits  # (B, L, V)
    padded = torch.cat([ids, torch.zeros(3, 6, dtype=torch.long)], 1)
    mask = torch.cat([torch.ones(3, 11), torch.zeros(3, 6)], 1).long()
    out = model(input_ids=padded, attention_mask=mask)
    assert torch.allclose(out.logits[:, :11], alone, atol=1e-6)
    hidden = model.convlm(input_ids=padded, attention_mask=mask).last_hidden_state
    assert hidden[:, 11:].abs().max() == 0  # padded positions carry nothing


def test_receptive_field_grows_with_dilation():
    """Block i of kernel k and dilation d_i moves information (k - 1) * d_i / 2 positions each side."""
    torch.manual_seed(0)
    model = ConvLMModel(tiny(hidden_dropout_prob=0.0)).double().eval()  # float64: far effects are ~1e-9
    ids = torch.full((1, 41), 3)
    base = model(input_ids=ids).last_hidden_state
    ids[0, 20] = 4
    changed = (model(input_ids=ids).last_hidden_state - base).abs().sum(-1)[0] > 0  # (L,)
    reach = 1 + 2 + 4 + 1 + 2  # sum of dilations for k = 3
    assert changed[20 - reach] and changed[20 + reach]
    assert not changed[20 - reach - 1] and not changed[20 + reach + 1]


def test_masked_lm_loss_and_native_reload_use_every_tensor(tmp_path):
    from genoml.archs import detect, load_native

    torch.manual_seed(0)
    mlm = ConvLMForMaskedLM(tiny())
    ids = torch.randint(2, 10, (2, 9))
    labels = torch.full_like(ids, -100)
    labels[:, 3] = ids[:, 3]
    out = mlm(input_ids=ids, labels=labels)
    expected = torch.nn.functional.cross_entropy(out.logits[:, 3], ids[:, 3])
    assert torch.isclose(out.loss, expected)
    mlm.save_pretrained(tmp_path, safe_serialization=True)
    config = (tmp_path / "config.json").read_text()
    assert '"genoml_convlm"' in config
    import json

    assert detect(json.loads(config)) == "convlm"
    trunk = load_native("convlm", str(tmp_path)).eval()  # check_loading: every trunk tensor from the file
    mlm.eval()
    assert torch.equal(trunk(input_ids=ids).last_hidden_state, mlm.convlm(input_ids=ids).last_hidden_state)
    assert len(trunk.encoder.layer) == 5


def test_parameters_of_the_default_size():
    n = sum(p.numel() for p in ConvLMModel(ConvLMConfig(vocab_size=16)).parameters())
    assert 1_000_000 < n < 3_000_000  # H=256, 8 blocks: small enough to ship (<25 MB)


@pytest.mark.parametrize("bad", [{"hidden_size": 0}, {"num_hidden_layers": 0}, {"kernel_size": 4}])
def test_bad_sizes_fail_at_construction(bad):
    with pytest.raises(ValueError, match="ConvLMConfig"):
        ConvLMConfig(vocab_size=10, **bad)


def test_cli_pretrain_cnn_then_finetune_predict_and_continue(tmp_path, dna_fasta, capsys):  # noqa: F811
    """pretrain --arch cnn writes a masked-LM folder that finetune uses as a base (its trunk, every tensor) and
    that pretrain --model continues."""
    import json

    from genoml.cli import main
    from tests.tiny import planted_motif_rows, write_csv

    small = ["--preset", "tiny", "--window", "32", "--batch-size", "8", "--eval-every", "2"]
    pre = tmp_path / "pre"
    args = [
        "-q",
        "pretrain",
        *dna_fasta,
        "--arch",
        "cnn",
        *small,
        "--max-steps",
        "2",
        "--eval-fraction",
        "0.2",
    ]
    assert main([*args, "--out", str(pre)]) == 0
    meta = json.loads((pre / "genoml.json").read_text())
    assert meta["arch"] == "genoml_convlm" and meta["heldout"]["masked_acc"] is not None
    assert (
        json.loads((pre / "config.json").read_text())["num_hidden_layers"] == 4
    )  # tiny: 2 layers x 2 blocks

    data = write_csv(tmp_path / "train.csv", planted_motif_rows(40))
    run = tmp_path / "run"
    ft = ["-q", "finetune", str(data), "--model", str(pre), "--strategy", "partial:1", "--epochs", "1"]
    assert main([*ft, "--out", str(run), "--no-baselines"]) == 0  # --attention (default): no maps to draw
    assert "attention maps skipped" not in capsys.readouterr().err
    assert json.loads((run / "genoml.json").read_text())["arch"] == "hf"
    preds = tmp_path / "p.tsv"
    assert main(["-q", "predict", "--model", str(run), str(data), "-o", str(preds)]) == 0
    assert len(preds.read_text().splitlines()) == 41

    import numpy as np  # embed pools as finetune does: auto is [mean, max] for the ConvLM, (N, 2H)

    width = json.loads((pre / "config.json").read_text())["hidden_size"]
    for how, w in (("auto", 2 * width), ("meanmax", 2 * width), ("mean", width)):
        emb = tmp_path / f"e_{how}.npz"
        assert main(["-q", "embed", str(data), "--model", str(pre), "--pooling", how, "-o", str(emb)]) == 0
        with np.load(emb) as z:
            assert z["embeddings"].shape == (40, w)
    means = np.load(tmp_path / "e_mean.npz")["embeddings"]
    assert np.allclose(np.load(tmp_path / "e_meanmax.npz")["embeddings"][:, :width], means, atol=1e-5)

    more = tmp_path / "more"
    assert main(["-q", "pretrain", *dna_fasta, "--model", str(pre), *small[2:], "--max-steps", "1",
                 "--eval-fraction", "0.2", "--out", str(more)]) == 0  # fmt: skip
    assert json.loads((more / "genoml.json").read_text())["base_model"] == str(pre)


def test_multitask_on_a_pretrained_convlm_base_then_finetune(tmp_path, dna_fasta):  # noqa: F811
    """multitask --base FOLDER trains the pretrained encoder with one head per dataset (lr: finetune's full default
    at its width), writes a transformers folder, and finetune --model uses that trained encoder, every tensor."""
    import json

    from safetensors.torch import load_file

    from genoml.cli import main
    from tests.tiny import planted_motif_rows, write_csv

    pre = tmp_path / "pre"
    small = ["--preset", "tiny", "--window", "32", "--batch-size", "8", "--eval-every", "2"]
    assert main(["-q", "pretrain", *dna_fasta, "--arch", "cnn", *small, "--max-steps", "1",
                 "--eval-fraction", "0.2", "--out", str(pre)]) == 0  # fmt: skip
    rows = planted_motif_rows(120, length=40, seed=4)
    a = write_csv(tmp_path / "a.csv", rows[:60])
    b = write_csv(tmp_path / "b.csv", [(s, "x" if y == "1" else "y") for s, y in rows[60:]])
    target = write_csv(tmp_path / "target.csv", rows[:5])  # 5 of a's sequences: screened out
    mt = tmp_path / "mt"
    argv = [
        "-q",
        "multitask",
        f"a={a}",
        f"b={b}",
        "--base",
        str(pre),
        "--exclude",
        str(target),
        "--epochs",
        "2",
    ]
    assert main([*argv, "--threads", "1", "--out", str(mt)]) == 0
    meta = json.loads((mt / "genoml.json").read_text())
    assert meta["kind"] == "multitask" and meta["arch"] == "hf" and meta["config"]["base"] == str(pre)
    assert json.loads((mt / "metrics.json").read_text())["exclusion"]["per_dataset"]["a"]["exact"] == 5
    assert set(load_file(str(mt / "heads.safetensors"))) >= {"heads.0.net.1.weight", "heads.1.net.1.weight"}
    trained, start = load_file(str(mt / "model.safetensors")), load_file(str(pre / "model.safetensors"))
    key = next(k for k in trained if k.endswith("embeddings.word_embeddings.weight"))
    assert not torch.equal(trained[key], start["convlm." + key])  # the pretrained encoder was trained further

    run = tmp_path / "run"
    data = write_csv(tmp_path / "train.csv", planted_motif_rows(40, seed=9))
    ft = [
        "-q",
        "finetune",
        str(data),
        "--model",
        str(mt),
        "--strategy",
        "probe",
        "--epochs",
        "1",
        "--rc",
        "off",
    ]
    assert main([*ft, "--no-baselines", "--no-attention", "--out", str(run)]) == 0
    tuned = load_file(str(run / "model.safetensors"))
    assert all(torch.equal(tuned[k], v) for k, v in trained.items())  # probe: the trunk as trained
    assert (
        main(["-q", "multitask", str(a), "--base", str(tmp_path / "nope"), "--out", str(tmp_path / "x")]) == 2
    )


def test_multitask_lr_default_follows_the_trunk():
    from genoml.config import MultitaskConfig
    from genoml.multitask import MultitaskNet, peak_lr

    conv = ConvLMModel(tiny())
    hf = MultitaskNet(conv, None, conv.config.hidden_size, [2])
    assert peak_lr(MultitaskConfig(datasets=["x"]), hf) == 1e-3  # 1e-4 × 768 / 16, capped
    assert peak_lr(MultitaskConfig(datasets=["x"], lr=5e-4), hf) == 5e-4
    net = MultitaskNet(conv, torch.nn.Identity(), 16, [2])
    assert peak_lr(MultitaskConfig(datasets=["x"]), net) == 2e-3


def test_meanmax_pooling_ignores_padding():
    """meanmax = [mean, max] over real tokens only: a large value at a padded position changes nothing."""
    from genoml.models import pool

    h = torch.tensor([[[1.0, -1.0], [3.0, -3.0], [100.0, 100.0]]])  # (B=1, L=3, H=2), position 2 padded
    mask = torch.tensor([[1, 1, 0]])
    assert pool(h, mask, "meanmax").tolist() == [[2.0, -2.0, 3.0, -1.0]]  # (B, 2H)
    assert pool(h, mask, "mean").tolist() == [[2.0, -2.0]]


def test_finetune_meanmax_pooling_round_trips_through_predict(tmp_path, dna_fasta):  # noqa: F811
    """--pooling meanmax doubles the head's input (B, 2H); the run reloads with it and predicts every record."""
    import json

    from genoml.cli import main
    from genoml.runs import load_predictor
    from tests.tiny import planted_motif_rows, write_csv

    pre = tmp_path / "pre"
    assert main(["-q", "pretrain", *dna_fasta, "--arch", "cnn", "--preset", "tiny", "--window", "32",
                 "--batch-size", "8", "--max-steps", "1", "--eval-fraction", "0.2", "--out", str(pre)]) == 0  # fmt: skip
    data = write_csv(tmp_path / "train.csv", planted_motif_rows(40))
    run = tmp_path / "run"
    ft = ["-q", "finetune", str(data), "--model", str(pre), "--pooling", "meanmax", "--epochs", "1"]
    assert main([*ft, "--out", str(run), "--no-baselines", "--no-attention"]) == 0
    assert json.loads((run / "genoml.json").read_text())["pooling"] == "meanmax"
    model = load_predictor(run)[0].model
    assert model.classifier.net[-1].in_features == 2 * model.encoder.config.hidden_size
    preds = tmp_path / "p.tsv"
    assert main(["-q", "predict", "--model", str(run), str(data), "-o", str(preds)]) == 0
    assert len(preds.read_text().splitlines()) == 41


def test_pooling_auto_is_meanmax_for_convlm_and_mean_for_transformers():
    from transformers import BertConfig, BertModel

    from genoml.models import pooling_for

    bert = BertModel(BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=16), add_pooling_layer=False)  # fmt: skip
    assert pooling_for("auto", ConvLMModel(tiny())) == "meanmax"
    assert pooling_for("auto", bert) == "mean"
    assert pooling_for("cls", ConvLMModel(tiny())) == "cls"  # an explicit choice is kept
