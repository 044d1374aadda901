"""Tests of the synthetic galaxy generator (galmet.synthetic.render, galmet synth)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("galsim", reason="the synthetic generator needs GalSim")
pytest.importorskip("astropy", reason="the synthetic generator needs astropy")
spearmanr = pytest.importorskip("scipy.stats").spearmanr

from galmet.cli.main import main  # noqa: E402
from galmet.data.dataset import load_dataset  # noqa: E402
from galmet.errors import ConfigError  # noqa: E402
from galmet.paper import tremonti_mzr  # noqa: E402
from galmet.synthetic.physics import (  # noqa: E402
    ALPHA_INCL,
    LOGM_MAX,
    LOGM_MIN,
    NOISE_FLOOR_RMSE,
    SIGMA_MEAS,
    alpha_ssfr,
    draw_galaxy,
    observable_metallicity,
    population_mzr,
    sigma_unobs,
)
from galmet.synthetic.render import SDSS_COLUMNS, check_options, synthesize  # noqa: E402

N, SIZE = 200, 32


def _synth_cli(out, seed=1, workers=2, extra=()):
    return main(
        [
            "synth",
            "--n",
            str(N),
            "--out",
            str(out),
            "--seed",
            str(seed),
            "--size",
            str(SIZE),
            "--workers",
            str(workers),
            "--no-progress",
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def synth_dirs(tmp_path_factory):
    """The same seed made with 2 workers and with 1, and another seed."""
    base = tmp_path_factory.mktemp("synth")
    assert _synth_cli(base / "a", seed=1, workers=2) == 0
    assert _synth_cli(base / "b", seed=1, workers=1) == 0
    synthesize(base / "c", N, seed=2, size=SIZE, workers=1, progress=False)
    return base / "a", base / "b", base / "c"


@pytest.fixture(scope="module")
def population():
    """Latent truths and catalog values of 3000 galaxies (no images: fast)."""
    return pd.DataFrame(
        [{k: v for k, v in draw_galaxy(7, i)[0].items() if not k.startswith("flux_")} for i in range(3000)]
    )


def _image_bytes(root):
    return {p.name: p.read_bytes() for p in sorted((root / "images").glob("*.jpg"))}


def test_same_seed_is_byte_identical_whatever_the_workers(synth_dirs):
    a, b, _ = synth_dirs
    assert (a / "catalog.parquet").read_bytes() == (b / "catalog.parquet").read_bytes()
    images_a, images_b = _image_bytes(a), _image_bytes(b)
    assert len(images_a) == N
    assert images_a == images_b
    assert (a / "synth_config.yaml").read_bytes() == (b / "synth_config.yaml").read_bytes()


def test_another_seed_differs(synth_dirs):
    a, _, c = synth_dirs
    cat_a, cat_c = pd.read_parquet(a / "catalog.parquet"), pd.read_parquet(c / "catalog.parquet")
    assert not np.allclose(cat_a["oh_p50"], cat_c["oh_p50"])
    assert set(cat_a["objID"]).isdisjoint(cat_c["objID"])
    assert _image_bytes(a).keys().isdisjoint(_image_bytes(c).keys())


def test_output_loads_as_a_dataset(synth_dirs):
    a = synth_dirs[0]
    ds = load_dataset(a)
    assert len(ds) == N and ds.image_size == SIZE
    assert ds.images().shape == (N, SIZE, SIZE, 3)
    cat = pd.read_parquet(a / "catalog.parquet")
    assert cat["objID"].dtype == np.int64 and cat["objID"].is_unique
    assert list(cat.columns[: len(SDSS_COLUMNS)]) == SDSS_COLUMNS
    for col in (
        "split",
        "oh_observable",
        "oh_unexplained",
        "oh_mzr",
        "log_ssfr",
        "bt_r",
        "inclination_deg",
        "r_disk_kpc",
        "r_bulge_kpc",
        "r_disk_arcsec",
        "psf_fwhm",
    ):
        assert col in cat.columns, col
    assert not cat[SDSS_COLUMNS].isna().any().any()
    counts = cat["split"].value_counts()
    assert counts["test"] == round(0.176 * N)
    assert counts["valid"] == round(0.2 * (N - counts["test"]))
    assert (ds.catalog["split"].to_numpy() == cat["split"].to_numpy()).all()
    config = json.loads(cat.attrs["galmet_synthetic"])  # also in the parquet metadata
    assert config["physics"]["noise_floor_rmse"] == pytest.approx(NOISE_FLOOR_RMSE, abs=1e-6)
    import yaml

    saved = yaml.safe_load((a / "synth_config.yaml").read_text())
    assert saved["n"] == N and saved["seed"] == 1 and saved["size"] == SIZE
    assert saved["physics"]["noise_floor_rmse"] == pytest.approx(NOISE_FLOOR_RMSE, abs=1e-6)


def test_catalog_values_are_sdss_like(synth_dirs):
    cat = pd.read_parquet(synth_dirs[0] / "catalog.parquet")
    assert cat["lgm_tot_p50"].between(LOGM_MIN, LOGM_MAX).all() and (cat["lgm_tot_p50"] < 8.5).mean() < 0.03
    assert 9.9 < cat["lgm_tot_p50"].median() < 10.7
    assert cat["z"].between(0.02, 0.3).all() and 0.04 < cat["z"].median() < 0.08
    assert cat["modelMag_r"].between(12, 18.2).all()
    u_r = cat["modelMag_u"] - cat["modelMag_r"]
    assert u_r.between(0, 6).all()
    assert (cat["petroR90_r"] > cat["petroR50_r"]).all() and cat["petroR90_r"].median() > 3
    assert (cat["modelMag_g"] > cat["modelMag_r"]).mean() > 0.9  # galaxies are red in g - r
    assert 0.12 < cat["oh_p50"].std() < 0.22


def test_images_reveal_brightness_and_colour(synth_dirs):
    a = synth_dirs[0]
    ds = load_dataset(a, cache=False)
    img = ds.images().astype(np.float64)
    cat = ds.catalog
    c = SIZE // 2
    centre = img[:, c - 2 : c + 2, c - 2 : c + 2].mean(axis=(1, 2))  # (N, 3)
    corner = img[:, :4, :4].mean(axis=(1, 2))
    assert np.median(centre.sum(1)) > 4 * np.median(corner.sum(1))  # galaxy on a dark sky
    assert np.median(corner) < 20
    # Brighter galaxies give brighter images; redder galaxies (g - r) redder centres (R - B).
    assert spearmanr(img.sum(axis=(1, 2, 3)), -cat["modelMag_r"]).statistic > 0.4
    red = (centre[:, 0] - centre[:, 2]) / centre.sum(1)
    assert spearmanr(red, cat["modelMag_g"] - cat["modelMag_r"]).statistic > 0.5


def test_metallicity_follows_mass(population):
    assert spearmanr(population["oh_p50"], population["lgm_tot_p50"]).statistic > 0.5


def _partial_slope(resid, x, logm):
    """Slope of resid against x after removing a linear trend of both with mass."""

    def detrend(v):
        return v - np.polyval(np.polyfit(logm, v, 1), logm)

    return np.polyfit(detrend(x), detrend(resid), 1)[0]


def test_metallicity_at_fixed_mass_reveals_star_formation_and_inclination(population):
    p = population
    m = p["lgm_tot_p50"]
    resid = p["oh_p50"] - population_mzr(m)
    # Star-forming, bluer disks are metal-poorer at fixed mass, with the FMR's slope where it is
    # strong (log M* < 10: -0.15 dex per dex of sSFR) and none left at the highest masses.
    low, high = m < 10, m > 11.1
    assert np.polyfit(p["delta_ssfr"][low], resid[low], 1)[0] == pytest.approx(-0.15, abs=0.03)
    assert abs(np.polyfit(p["delta_ssfr"][high], resid[high], 1)[0]) < 0.04
    assert spearmanr(resid[low], p["delta_ssfr"][low]).statistic < -0.2
    assert _partial_slope(resid, p["disk_gr_rest"], m) > 0.1
    # Edge-on disks show lower Z.
    assert spearmanr(resid, 1 - p["cos_incl"]).statistic < -0.1
    assert _partial_slope(resid, 1 - p["cos_incl"], m) == pytest.approx(ALPHA_INCL, abs=0.03)


def test_sfr_term_fades_with_mass_and_scatter_grows_at_low_mass():
    assert alpha_ssfr([9.0, 10.0]).tolist() == [-0.15, -0.15]
    assert alpha_ssfr(10.5) == pytest.approx(-0.09) and alpha_ssfr(11.5) == 0
    assert sigma_unobs(8.5) > 0.1 > 0.03 > sigma_unobs(11.0)


def test_population_matches_the_real_catalogue(population):
    """The distributions of PAPER.md "The real catalogue" (95,986 galaxies; Z percentiles of the
    20,466 test galaxies): 3000 galaxies carry ~0.006 of sampling noise on a fraction."""
    m, z = population["lgm_tot_p50"], population["oh_p50"]
    assert np.percentile(m, [25, 50, 75]) == pytest.approx([9.646, 10.059, 10.423], abs=0.05)
    assert m.mean() == pytest.approx(10.013, abs=0.04)
    assert np.percentile(z, [5, 16, 50, 84, 95]) == pytest.approx([8.49, 8.71, 8.96, 9.09, 9.13], abs=0.03)
    assert z.std() == pytest.approx(0.199, abs=0.015)
    assert (z > 9.1).mean() == pytest.approx(0.126, abs=0.025)
    assert (z < 8.5).mean() == pytest.approx(0.053, abs=0.02)
    # the old generator put 19.8% above 9.1 and 1.3% below 8.5
    assert (z > 9.1).mean() < 0.16 and (z < 8.5).mean() > 0.03


def test_observable_oracle_sits_between_the_noise_floor_and_the_constant(population):
    from galmet.science.baseline import noise_floor, observable_oracle

    cat = population.assign(split=np.where(np.arange(len(population)) % 5 == 0, "test", "train"))
    pred = observable_oracle(cat)
    test = cat["split"] == "test"
    oracle = float(np.sqrt(np.mean((pred["oh_p50_pred"][test] - cat["oh_p50"][test]) ** 2)))
    const = float(cat["oh_p50"][test].std())
    floor = noise_floor(cat)
    assert floor == pytest.approx(np.sqrt(np.mean(cat["oh_unexplained"][test] ** 2)))
    assert floor < oracle < 0.8 * const, (floor, oracle, const)
    again = observable_oracle(cat)
    assert np.array_equal(again["oh_p50_pred"], pred["oh_p50_pred"])  # deterministic


def test_noise_floor_is_recorded_and_matches(population):
    p = population
    unexplained = p["oh_p50"] - p["oh_observable"]
    np.testing.assert_allclose(unexplained, p["oh_unexplained"], atol=1e-9)
    np.testing.assert_allclose(
        observable_metallicity(p["lgm_tot_p50"], p["delta_ssfr"], p["cos_incl"], p["delta_log_rdisk"]),
        p["oh_observable"],
        atol=1e-9,
    )
    assert np.sqrt(np.mean(unexplained**2)) == pytest.approx(NOISE_FLOOR_RMSE, rel=0.08)
    # the floor is sqrt(E[sigma_unobs(M)^2] + sigma_meas^2) over the population's masses
    expected = np.sqrt(np.mean(sigma_unobs(p["lgm_tot_p50"]) ** 2) + SIGMA_MEAS**2)
    assert expected == pytest.approx(NOISE_FLOOR_RMSE, rel=0.03)
    # The observable part carries most of the variance: a perfect predictor beats the mean clearly.
    assert p["oh_p50"].std() > 2 * NOISE_FLOOR_RMSE


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--n", "0"], "--n must be"),
        (["--n", "5", "--size", "48"], "--size must be a power of two"),
        (["--n", "5", "--size", "4"], "--size must be a power of two"),
        (["--n", "5", "--seed", "-1"], "--seed: must be an integer from 0 to 4294967295"),
        (["--n", "5", "--test", "nan"], "--test: expected a fraction"),
        (["--n", "5", "--valid-fraction", "nan"], "--valid-fraction: expected a finite number"),
        (["--n", "5", "--workers", "0"], "--workers must be"),
        (["--n", "5", "--test", "1.5"], "--test must be"),
        (["--n", "5", "--test", "9"], "--test count 9 is larger than --n 5"),
        (["--n", "5", "--valid-fraction", "1"], "--valid-fraction must be"),
    ],
)
def test_bad_options_exit_2_with_one_line(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    assert main(["synth", "--out", str(out), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    assert not out.exists()


def test_existing_nonempty_directory_is_not_touched(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["synth", "--n", "3", "--out", str(out), "--size", "16", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not empty" in err and "--overwrite" in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"


def test_output_path_that_is_a_file_is_refused(tmp_path, capsys):
    out = tmp_path / "file.txt"
    out.write_text("keep")
    assert main(["synth", "--n", "2", "--out", str(out), "--size", "16", "--no-progress"]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert out.read_text() == "keep"


def test_overwrite_replaces_a_previous_synthesis(tmp_path):
    out = tmp_path / "out"
    synthesize(out, 6, seed=3, size=16, workers=1, progress=False)
    with pytest.raises(ConfigError, match="not empty"):
        synthesize(out, 4, seed=4, size=16, workers=1, progress=False)
    (out / "mine.txt").write_text("keep")
    synthesize(out, 4, seed=4, size=16, workers=1, progress=False, overwrite=True)
    ds = load_dataset(out)
    assert len(ds) == 4 and len(list((out / "images").glob("*.jpg"))) == 4
    assert (out / "mine.txt").read_text() == "keep"  # only what a synthesis writes is removed


@pytest.mark.parametrize("size", [8, 64])
def test_other_sizes_keep_the_field_of_view(tmp_path, size):
    out = synthesize(tmp_path / "s", 4, seed=5, size=size, workers=1, progress=False, test=1)
    ds = load_dataset(out)
    assert ds.image_size == size
    assert (ds.catalog["split"] == "test").sum() == 1
    ref = synthesize(tmp_path / "ref", 4, seed=5, size=32, workers=1, progress=False, test=1)
    # The same galaxies (same latent truths) whatever the pixel size.
    np.testing.assert_allclose(
        pd.read_parquet(out / "catalog.parquet")["oh_p50"], pd.read_parquet(ref / "catalog.parquet")["oh_p50"]
    )


def test_check_options_rejects_non_integers():
    with pytest.raises(ConfigError, match="^n must be an integer") as info:
        check_options(2.5, 0, 32)
    assert info.value.param == "n"
    with pytest.raises(ConfigError, match="^seed must be an integer") as info:
        check_options(2, 2**32, 32)
    assert info.value.param == "seed"


@pytest.mark.parametrize(
    "kwargs, param",
    [
        ({"size": 48}, "size"),
        ({"workers": 0}, "workers"),
        ({"test": 1.5}, "test"),
        ({"test": 9}, ("test", "n")),
        ({"valid_fraction": 1.0}, "valid_fraction"),
    ],
)
def test_library_errors_name_the_parameter_not_the_flag(kwargs, param):
    options = {"n": 5, "seed": 0, "size": 32, **kwargs}
    with pytest.raises(ConfigError) as info:
        check_options(**options)
    first = param[0] if isinstance(param, tuple) else param
    assert info.value.param == param and str(info.value).startswith(f"{first} ") and "--" not in str(info.value)


@pytest.mark.slow
def test_images_are_learnable(tmp_path):
    """A small CNN trained on 1,500 32-pixel images clearly beats the constant predictor."""
    torch = pytest.importorskip("torch")
    from torch import nn

    out = synthesize(tmp_path / "learn", 1500, seed=11, size=32, progress=False)
    ds = load_dataset(out)
    x = torch.tensor(np.asarray(ds.images()), dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
    y = torch.tensor(ds.catalog["oh_p50"].to_numpy(), dtype=torch.float32)
    train, test = ds.split_indices(["train", "valid"]), ds.split_indices("test")
    mu, sd = y[train].mean(), y[train].std()
    torch.manual_seed(0)

    def block(i, o):
        return nn.Sequential(
            nn.Conv2d(i, o, 3, padding=1),
            nn.BatchNorm2d(o),
            nn.ReLU(),
            nn.Conv2d(o, o, 3, padding=1),
            nn.BatchNorm2d(o),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )

    net = nn.Sequential(
        block(3, 32),
        block(32, 64),
        block(64, 128),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Linear(64, 1),
    )
    epochs, batch = 12, 64
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=epochs * -(-len(train) // batch))
    rng = np.random.default_rng(0)
    for _ in range(epochs):
        net.train()
        order = train[rng.permutation(len(train))]
        for i in range(0, len(order), batch):
            b = order[i : i + batch]
            xb = torch.rot90(x[b], int(rng.integers(4)), (2, 3))
            loss = ((net(xb).squeeze(1) - (y[b] - mu) / sd) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    with torch.no_grad():
        pred = net(x[test]).squeeze(1) * sd + mu
    rmse = float(((pred - y[test]) ** 2).mean().sqrt())
    const = float(((y[test] - mu) ** 2).mean().sqrt())
    floor = float(np.sqrt(np.mean(ds.catalog["oh_unexplained"].to_numpy()[test] ** 2)))
    cat = ds.catalog.iloc[test]
    mzr = float(np.sqrt(np.mean((cat["oh_p50"] - tremonti_mzr(cat["lgm_tot_p50"])) ** 2)))
    print(
        f"\nlearnability (test set, {len(test)} galaxies): CNN RMSE {rmse:.4f}, constant {const:.4f}, "
        f"MZR at the true mass {mzr:.4f}, noise floor {floor:.4f} dex"
    )
    assert rmse < 0.8 * const, (rmse, const)
