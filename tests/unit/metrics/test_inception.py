import importlib.util
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from models.metrics.features import InceptionFeatures
from models.metrics.inception import FIDInceptionV3, load_fid_inception


def _torchvision_importable() -> bool:
    if importlib.util.find_spec("torchvision") is None:
        return False
    try:
        import torchvision  # noqa: F401 - the CUDA wheel on PyPI raises here on torch+cpu
    except (ImportError, RuntimeError):
        return False
    return True


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory) -> Path:
    """A randomly initialised FID Inception state dict, with non-trivial batch-norm stats."""
    torch.manual_seed(0)
    model = FIDInceptionV3()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("inception") / "pt_inception-random.pth"
    torch.save(model.state_dict(), path)
    return path


def test_state_dict_has_pytorch_fid_module_names():
    keys = FIDInceptionV3().state_dict().keys()
    assert "Conv2d_1a_3x3.conv.weight" in keys
    assert "Mixed_7c.branch3x3dbl_3b.bn.running_var" in keys
    assert "fc.weight" in keys and not any(k.startswith("AuxLogits") for k in keys)


def test_pth_and_safetensors_weights_load_the_same(random_weights, tmp_path):
    save_file(torch.load(random_weights, weights_only=True), str(tmp_path / "w.safetensors"))
    from_pth = load_fid_inception(random_weights).state_dict()
    from_safetensors = load_fid_inception(tmp_path / "w.safetensors").state_dict()
    for key, value in from_pth.items():
        torch.testing.assert_close(from_safetensors[key], value, rtol=0, atol=0)


def test_grayscale_is_repeated_to_three_channels(random_weights):
    extractor = InceptionFeatures(random_weights)
    gray = torch.randint(0, 256, (1, 1, 12, 12), dtype=torch.uint8)
    features, logits = extractor.with_logits(gray)
    rgb_features = extractor(gray.repeat(1, 3, 1, 1))
    assert features.shape == (1, 2048) and logits.shape == (1, 1008)
    np.testing.assert_array_equal(features, rgb_features)


@pytest.mark.skipif(
    not _torchvision_importable(), reason="pytorch-fid's InceptionV3 needs torchvision"
)
def test_matches_pytorch_fid_inception_on_the_same_weights(random_weights):
    import pytorch_fid.inception as pytorch_fid_inception

    state = torch.load(random_weights, weights_only=True)
    # pytorch-fid downloads its weights inside fid_inception_v3(); hand it ours instead.
    with mock.patch.object(
        pytorch_fid_inception, "load_state_dict_from_url", lambda *args, **kwargs: state
    ):
        theirs = pytorch_fid_inception.InceptionV3([3]).eval()
    images = torch.randint(0, 256, (2, 3, 28, 28), dtype=torch.uint8)
    ours = InceptionFeatures(random_weights)(images)
    with torch.inference_mode():
        expected = theirs(images.float() / 255.0)[0].flatten(1).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


def test_missing_weights_say_where_to_get_them(tmp_path):
    from models.metrics.errors import MetricsError

    with pytest.raises(MetricsError, match="SYNTHGEN_INCEPTION_WEIGHTS"):
        InceptionFeatures(tmp_path / "absent.pth")
