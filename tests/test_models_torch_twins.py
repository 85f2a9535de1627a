"""Every model of minidl.models against a PyTorch twin written from its docstring.

Each twin is built from torch's own layers (Conv2d, MultiheadAttention,
TransformerEncoderLayer, ...), wired as the model's docstring describes, and
loaded with the minidl model's weights under the same names (strict: every
parameter must have its counterpart). All weights are first drawn at random,
so a layer norm whose scale is 1 or a bias that is 0 cannot hide a missing
layer. Then the outputs (and the attention maps and the loss, where the model
has them) must agree. A missing residual, a missing causal mask, a dropped
activation, a token read from the wrong position or a reshape in the wrong
order each change the numbers far beyond the tolerance.
"""
import numpy as np
import pytest

import minidl as mdl
from minidl.models import build_model
from minidl.models.gpt import GPT, GPTConfig
from minidl.models.vit import VisionTransformer

torch = pytest.importorskip("torch")
tnn, TF = torch.nn, torch.nn.functional


def _randomise(model, seed):
    """Every floating parameter and buffer redrawn (variances kept positive)."""
    rng = np.random.default_rng(seed)
    state = {}
    for name, value in model.state_dict().items():
        value = np.asarray(value)
        if value.dtype.kind == "f":
            value = (0.3 * rng.standard_normal(value.shape)).astype(value.dtype)
            if name.endswith("running_var"):
                value = np.abs(value) + 0.5
        state[name] = value
    model.load_state_dict(state)
    return state


def _load_twin(twin, state):
    """Copy minidl's state (name -> array) into the twin; every twin tensor must be named."""
    wanted = twin.state_dict()
    missing = set(wanted) - set(state)
    assert not missing, f"the twin has tensors minidl lacks: {sorted(missing)}"
    twin.load_state_dict({k: torch.from_numpy(np.array(state[k])).to(wanted[k].dtype).reshape(wanted[k].shape)
                          for k in wanted})
    return twin


def _ours(model, x):
    with mdl.no_grad():
        return np.asarray(model(mdl.tensor(x) if np.asarray(x).dtype.kind == "f" else x).data)


def _theirs(twin, x):
    with torch.no_grad():
        return twin(torch.from_numpy(np.asarray(x))).numpy()


# ---- GPT ---------------------------------------------------------------------------------
class TwinBlock(tnn.Module):
    """Pre-norm GPT-2 block: x + attn(ln_1(x)) with a causal mask, then x + mlp(ln_2(x))."""

    def __init__(self, embed, heads):
        super().__init__()
        self.ln_1 = tnn.LayerNorm(embed)
        self.attn = tnn.MultiheadAttention(embed, heads, batch_first=True)
        self.ln_2 = tnn.LayerNorm(embed)
        self.mlp = tnn.Sequential(tnn.Linear(embed, 4 * embed), tnn.GELU(), tnn.Linear(4 * embed, embed),
                                  tnn.Dropout(0.0))

    def attention(self, x):
        T = x.shape[1]
        future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)   # True: may not look
        h = self.ln_1(x)
        return self.attn(h, h, h, attn_mask=future, need_weights=True, average_attn_weights=True)

    def forward(self, x):
        x = x + self.attention(x)[0]
        return x + self.mlp(self.ln_2(x))


class TwinGPT(tnn.Module):
    def __init__(self, config):
        super().__init__()
        self.token_embedding = tnn.Embedding(config.vocab_size, config.n_embd)
        self.position_embedding = tnn.Embedding(config.block_size, config.n_embd)
        self.blocks = tnn.ModuleList([TwinBlock(config.n_embd, config.n_head) for _ in range(config.n_layer)])
        self.ln_f = tnn.LayerNorm(config.n_embd)
        self.lm_head = tnn.Linear(config.n_embd, config.vocab_size, bias=False)

    def embed(self, idx):
        return self.token_embedding(idx) + self.position_embedding.weight[:idx.shape[1]]

    def forward(self, idx):
        x = self.embed(idx)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))


@pytest.fixture(scope="module")
def gpt_pair():
    config = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16, dropout=0.0)
    mdl.manual_seed(0)
    ours = GPT(config)
    state = _randomise(ours, 1)
    return ours, _load_twin(TwinGPT(config).eval(), state)


def test_gpt_logits_and_loss_match_the_pytorch_twin(gpt_pair):
    ours, twin = gpt_pair
    rng = np.random.default_rng(2)
    idx = rng.integers(0, 11, size=(3, 7))                  # N != T, so a transposed reshape shows
    targets = rng.integers(0, 11, size=(3, 7))
    expected = _theirs(twin, idx)
    np.testing.assert_allclose(_ours(ours, idx), expected, atol=2e-4, rtol=1e-4)
    with torch.no_grad():
        their_loss = TF.cross_entropy(torch.from_numpy(expected).reshape(21, 11),
                                      torch.from_numpy(targets).reshape(21)).item()
    with mdl.no_grad():
        our_loss = float(ours.loss(idx, targets).data)
    assert our_loss == pytest.approx(their_loss, rel=1e-4)


def test_gpt_attention_maps_match_the_twins_causal_head_averaged_weights(gpt_pair):
    ours, twin = gpt_pair
    idx = np.random.default_rng(3).integers(0, 11, size=(2, 8))
    maps = ours.attention_maps(idx)
    assert len(maps) == 2
    with torch.no_grad():
        x = twin.embed(torch.from_numpy(idx))
        for layer, block in enumerate(twin.blocks):
            np.testing.assert_allclose(maps[layer], block.attention(x)[1].numpy(), atol=2e-5, err_msg=f"layer {layer}")
            x = block(x)
    assert np.all(np.triu(maps[1][0], k=1) == 0), "a position attends to a later one"


def test_gpt_generate_reads_exactly_the_last_block_size_tokens(gpt_pair):
    """Greedy decoding (top_k=1) from prompts longer than the context: each
    new token is the twin's argmax over the last block_size (8) tokens."""
    ours, twin = gpt_pair
    prompt = np.random.default_rng(4).integers(0, 11, size=(6, 12))
    out = ours.generate(prompt, 4, top_k=1, rng=np.random.default_rng(0))
    assert out.shape == (6, 16)
    np.testing.assert_array_equal(out[:, :12], prompt)
    for step in range(4):
        context = out[:, 12 + step - 8:12 + step]
        expected = _theirs(twin, context)[:, -1].argmax(axis=1)
        np.testing.assert_array_equal(out[:, 12 + step], expected, err_msg=f"step {step}")


def test_gpt_generate_leaves_the_model_in_the_mode_it_found(gpt_pair):
    ours, _ = gpt_pair
    for mode in (True, False):
        ours.train(mode)
        ours.generate(np.zeros((1, 2), np.int64), 1, rng=np.random.default_rng(0))
        assert ours.training is mode and all(m.training is mode for m in ours.modules())
    ours.eval()


# ---- ViT ---------------------------------------------------------------------------------
class TwinViT(tnn.Module):
    """Conv patches (stride p, kernel k, padding (k - p) / 2), flattened row by row,
    class token first, learned positions, pre-norm GELU encoder layers, LayerNorm,
    a Linear head on the class token."""

    def __init__(self, channels, classes, dim, depth, heads, mlp_dim, patch, kernel, tokens):
        super().__init__()
        self.patch_embedding = tnn.Conv2d(channels, dim, kernel, stride=patch, padding=(kernel - patch) // 2)
        self.class_token = tnn.Parameter(torch.zeros(1, 1, dim))
        self.position_embedding = tnn.Embedding(tokens, dim)
        self.layers = tnn.ModuleList([
            tnn.TransformerEncoderLayer(dim, heads, mlp_dim, dropout=0.0, activation="gelu",
                                        batch_first=True, norm_first=True) for _ in range(depth)])
        self.norm = tnn.LayerNorm(dim)
        self.head = tnn.Linear(dim, classes)

    def tokens(self, images):
        patches = self.patch_embedding(images).flatten(2).transpose(1, 2)          # (N, P, dim)
        cls = self.class_token.expand(len(images), 1, -1)
        return torch.cat([cls, patches], dim=1) + self.position_embedding.weight

    def forward(self, images):
        x = self.tokens(images)
        for layer in self.layers:
            x = layer(x)
        return self.head(self.norm(x)[:, 0])


@pytest.fixture(scope="module")
def vit_pair():
    """The registry's ViT for 8x8 digits: 2x2 patches read through 4x4 windows."""
    mdl.manual_seed(0)
    ours = build_model("vit", (1, 8, 8), 10)
    state = _randomise(ours, 5)
    twin = TwinViT(1, 10, dim=64, depth=4, heads=4, mlp_dim=128, patch=2, kernel=4, tokens=17)
    return ours, _load_twin(twin.eval(), state)


def test_vit_logits_match_the_pytorch_twin(vit_pair):
    ours, twin = vit_pair
    images = np.random.default_rng(6).standard_normal((3, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(_ours(ours.eval(), images), _theirs(twin, images), atol=2e-4, rtol=1e-4)


def test_vit_attention_maps_match_the_twins_pre_norm_attention(vit_pair):
    ours, twin = vit_pair
    images = np.random.default_rng(7).standard_normal((2, 1, 8, 8)).astype(np.float32)
    maps = ours.attention_maps(mdl.tensor(images))
    assert len(maps) == 4
    with torch.no_grad():
        x = twin.tokens(torch.from_numpy(images))
        for layer, block in enumerate(twin.layers):
            h = block.norm1(x)
            expected = block.self_attn(h, h, h, need_weights=True, average_attn_weights=True)[1]
            np.testing.assert_allclose(maps[layer], expected.numpy(), atol=2e-5, err_msg=f"layer {layer}")
            x = block(x)


def test_registry_vit_patch_grids_follow_the_image_size():
    """8x8: 2x2 patches through overlapping 4x4 windows (padding 1); 28x28: 7x7 patches, no overlap."""
    small, large = build_model("vit", (1, 8, 8), 10), build_model("vit", (1, 28, 28), 10)
    conv = small.patch_embedding
    assert (conv.kernel_size, conv.stride, conv.padding) == ((4, 4), (2, 2), (1, 1))
    assert small.num_patches == 16 and large.num_patches == 16
    conv = large.patch_embedding
    assert (conv.kernel_size, conv.stride, conv.padding) == ((7, 7), (7, 7), (0, 0))


# ---- CNN, LeNet ----------------------------------------------------------------------------
class TwinCNN(tnn.Module):
    """conv 32 -> relu -> pool -> conv 64 -> relu -> pool -> conv 64 -> relu -> dense 64 -> relu -> dense."""

    def __init__(self, padding, flat, classes):
        super().__init__()
        self.conv1 = tnn.Conv2d(1, 32, 3, padding=padding)
        self.conv2 = tnn.Conv2d(32, 64, 3, padding=padding)
        self.conv3 = tnn.Conv2d(64, 64, 3, padding=padding)
        self.fc1 = tnn.Linear(flat, 64)
        self.fc2 = tnn.Linear(64, classes)

    def forward(self, x):
        x = TF.max_pool2d(TF.relu(self.conv1(x)), 2)
        x = TF.max_pool2d(TF.relu(self.conv2(x)), 2)
        x = TF.relu(self.conv3(x))
        return self.fc2(TF.relu(self.fc1(x.flatten(1))))


class TwinLeNet(tnn.Module):
    """conv 6 (5x5, pad 2) -> relu -> pool -> conv 16 (5x5, pad p2) -> relu -> pool -> 120 -> 84 -> classes."""

    def __init__(self, padding2, flat, classes):
        super().__init__()
        self.conv1 = tnn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = tnn.Conv2d(6, 16, 5, padding=padding2)
        self.fc1 = tnn.Linear(flat, 120)
        self.fc2 = tnn.Linear(120, 84)
        self.fc3 = tnn.Linear(84, classes)

    def forward(self, x):
        x = TF.max_pool2d(TF.relu(self.conv1(x)), 2)
        x = TF.max_pool2d(TF.relu(self.conv2(x)), 2)
        return self.fc3(TF.relu(self.fc2(TF.relu(self.fc1(x.flatten(1))))))


@pytest.mark.parametrize("name, size, twin", [
    ("cnn", 8, lambda: TwinCNN(1, 64 * 2 * 2, 10)),         # "same" padding: 8 -> 4 -> 2
    ("cnn", 28, lambda: TwinCNN(0, 64 * 3 * 3, 10)),        # Keras: 28 -> 26 -> 13 -> 11 -> 5 -> 3
    ("lenet", 8, lambda: TwinLeNet(2, 16 * 2 * 2, 10)),     # 8 -> 8 -> 4 -> 4 -> 2
    ("lenet", 28, lambda: TwinLeNet(0, 16 * 5 * 5, 10)),    # 28 -> 28 -> 14 -> 10 -> 5
])
def test_convolutional_classifiers_match_their_pytorch_twins(name, size, twin):
    mdl.manual_seed(0)
    ours = build_model(name, (1, size, size), 10)
    state = _randomise(ours, 8)
    twin = _load_twin(twin().eval(), state)
    images = np.random.default_rng(9).standard_normal((2, 1, size, size)).astype(np.float32)
    np.testing.assert_allclose(_ours(ours.eval(), images), _theirs(twin, images), atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("side, padding2, last", [(12, 0, 1), (13, 0, 1), (11, 2, 2), (10, 2, 2), (4, 2, 1)])
def test_lenet_pads_its_second_conv_only_below_a_6_pixel_pooled_map(side, padding2, last):
    """Worked by hand: pooled = side // 2; p2 = 0 when pooled >= 6, else 2;
    last = (pooled + 2 p2 - 4) // 2. A side of 12 gives 6 -> 2 -> 1 unpadded."""
    from minidl.models.lenet import LeNet

    model = LeNet(1, 10, (side, side))
    assert model.conv2.padding == (padding2, padding2)
    assert model.fc1.in_features == 16 * last * last
    with mdl.no_grad():
        assert model(mdl.tensor(np.zeros((1, 1, side, side), np.float32))).shape == (1, 10)


# ---- U-Net ---------------------------------------------------------------------------------
class TwinConvBlock(tnn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.layers = tnn.Sequential(tnn.Conv2d(cin, cout, 3, padding=1, bias=False), tnn.BatchNorm2d(cout),
                                     tnn.ReLU(), tnn.Conv2d(cout, cout, 3, padding=1, bias=False),
                                     tnn.BatchNorm2d(cout), tnn.ReLU())

    def forward(self, x):
        return self.layers(x)


class TwinUpStep(tnn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.reduce = tnn.Conv2d(cin, cout, 1)
        self.block = TwinConvBlock(2 * cout, cout)

    def forward(self, x, skip):
        x = self.reduce(TF.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False))
        return self.block(torch.cat([x, skip], dim=1))       # upsampled first, then the skip


class TwinUNet(tnn.Module):
    def __init__(self, width=16, classes=11):
        super().__init__()
        self.encoder1, self.encoder2 = TwinConvBlock(1, width), TwinConvBlock(width, 2 * width)
        self.bottom = TwinConvBlock(2 * width, 4 * width)
        self.up2, self.up1 = TwinUpStep(4 * width, 2 * width), TwinUpStep(2 * width, width)
        self.head = tnn.Conv2d(width, classes, 1)

    def forward(self, x):
        skip1 = self.encoder1(x)
        skip2 = self.encoder2(TF.max_pool2d(skip1, 2))
        bottom = self.bottom(TF.max_pool2d(skip2, 2))
        return self.head(self.up1(self.up2(bottom, skip2), skip1))


def test_unet_matches_its_pytorch_twin_with_both_skip_connections():
    mdl.manual_seed(0)
    ours = build_model("unet", (1, 16, 16), 11)
    state = _randomise(ours, 10)
    twin = _load_twin(TwinUNet().eval(), state)
    images = np.random.default_rng(11).standard_normal((2, 1, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(_ours(ours.eval(), images), _theirs(twin, images), atol=3e-4, rtol=1e-4)


# ---- GANs ----------------------------------------------------------------------------------
def _twin_dcgan(latent=32, width=64, size=8):
    s = size // 4
    generator = tnn.Sequential(
        tnn.Linear(latent, width * s * s, bias=False), tnn.Unflatten(1, (width, s, s)),
        tnn.BatchNorm2d(width), tnn.ReLU(),
        tnn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1, bias=False),
        tnn.BatchNorm2d(width // 2), tnn.ReLU(),
        tnn.ConvTranspose2d(width // 2, 1, 4, stride=2, padding=1), tnn.Tanh())
    discriminator = tnn.Sequential(
        tnn.Conv2d(1, width // 2, 4, stride=2, padding=1), tnn.LeakyReLU(0.2),
        tnn.Conv2d(width // 2, width, 4, stride=2, padding=1), tnn.LeakyReLU(0.2),
        tnn.Flatten(), tnn.Linear(width * s * s, 1))
    return generator, discriminator


def _twin_mlp_gan(latent=32, width=64, size=8):
    generator = tnn.Sequential(
        tnn.Linear(latent, 2 * width), tnn.BatchNorm1d(2 * width), tnn.LeakyReLU(0.2),
        tnn.Linear(2 * width, 4 * width), tnn.BatchNorm1d(4 * width), tnn.LeakyReLU(0.2),
        tnn.Linear(4 * width, size * size), tnn.Tanh(), tnn.Unflatten(1, (1, size, size)))
    discriminator = tnn.Sequential(
        tnn.Flatten(), tnn.Linear(size * size, 4 * width), tnn.LeakyReLU(0.2), tnn.Dropout(0.3),
        tnn.Linear(4 * width, 2 * width), tnn.LeakyReLU(0.2), tnn.Dropout(0.3), tnn.Linear(2 * width, 1))
    return generator, discriminator


@pytest.mark.parametrize("name, make_twins", [("dcgan", _twin_dcgan), ("gan", _twin_mlp_gan)])
def test_gan_players_match_their_pytorch_twins(name, make_twins):
    mdl.manual_seed(0)
    ours = build_model(name, (1, 8, 8), 10)
    assert ours.config.latent_dim == 32 and ours.config.width == 64
    state = _randomise(ours, 12)
    generator, discriminator = make_twins()
    for prefix, twin in (("generator.", generator), ("discriminator.", discriminator)):
        _load_twin(twin.eval(), {k[len(prefix + "net."):]: v for k, v in state.items() if k.startswith(prefix)})
    rng = np.random.default_rng(13)
    z = rng.standard_normal((4, 32)).astype(np.float32)
    images = rng.uniform(-1, 1, (4, 1, 8, 8)).astype(np.float32)
    ours.eval()
    np.testing.assert_allclose(_ours(ours.generator, z), _theirs(generator, z), atol=2e-4, rtol=1e-4)
    np.testing.assert_allclose(_ours(ours.discriminator, images), _theirs(discriminator, images),
                               atol=2e-4, rtol=1e-4)


def test_registry_gans_use_the_documented_real_labels_and_latent_sizes():
    """One-sided label smoothing (0.9) only for the dense GAN; latent 32 for 8x8, 64 for 28x28."""
    assert build_model("gan", (1, 8, 8), 10).real_label == 0.9
    assert build_model("dcgan", (1, 8, 8), 10).real_label == 1.0
    assert build_model("gan", (1, 28, 28), 10).config.latent_dim == 64
    assert build_model("dcgan", (1, 16, 16), 10).config.latent_dim == 32
