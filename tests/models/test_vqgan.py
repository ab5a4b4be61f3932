"""The VQ-GAN family: tokenizer, pixel-to-token masks, no peeking, MaskGIT decoding, tokenizer
training."""
import torch

from i2i_unlearn.checkpoints import load_tensors
from i2i_unlearn.config import DataConfig, TaskConfig, UnlearnConfig
from i2i_unlearn.data import load_split
from i2i_unlearn.methods import Batch, get_method
from i2i_unlearn.models import build_model, load_model
from i2i_unlearn.models.vqgan import VQTokenizer
from i2i_unlearn.tasks import make_mask
from conftest import TINY_VQGAN


def _images(n=4):
    train = load_split(DataConfig()).train
    return train.images[:n]


def test_tokenizer_round_trip_shapes_and_token_range():
    model = build_model(TINY_VQGAN).eval()
    x = _images()
    tokens = model.tokenizer.tokenize(x)
    grid, codes = model.tokenizer.grid, model.tokenizer.config.codebook_size
    assert tokens.shape == (4, grid * grid) and tokens.dtype == torch.long
    assert tokens.min() >= 0 and tokens.max() < codes
    images = model.tokenizer.detokenize(tokens)
    assert images.shape == x.shape and images.min() >= 0 and images.max() <= 1
    assert torch.equal(model.tokenizer.tokenize(images), model.tokenizer.tokenize(images))


def test_a_hole_rounds_outward_to_whole_tokens():
    model = build_model(TINY_VQGAN)
    cell = 32 // model.tokenizer.grid
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 9:13, 14:15] = 1  # off the token grid: touches tokens in rows 2-3 and column 3
    hidden = model.token_mask(mask).view(model.tokenizer.grid, model.tokenizer.grid)
    for row in range(model.tokenizer.grid):
        for col in range(model.tokenizer.grid):
            pixels = mask[0, 0, row * cell:(row + 1) * cell, col * cell:(col + 1) * cell]
            assert bool(hidden[row, col]) == bool(pixels.any())  # visible exactly when all pixels are
    assert hidden.sum() == 2


def test_changing_hidden_pixels_changes_no_visible_token():
    model = build_model(TINY_VQGAN).eval()
    x = _images()
    mask = make_mask(TaskConfig("center-inpaint", 0.5), 4, 32, model.mask_grid)
    changed = x * (1 - mask) + mask * torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.visible_tokens(x, mask), model.visible_tokens(changed, mask))
    with torch.no_grad():
        assert torch.equal(model.encode(x, mask), model.encode(changed, mask))
    # while the full image's tokens next to the hole do see it (the leak this guards against)
    assert not torch.equal(model.tokenizer.tokenize(x), model.tokenizer.tokenize(changed))


def test_decoding_reveals_every_hidden_token_and_never_changes_a_visible_one():
    model = build_model(TINY_VQGAN).eval()
    x = _images()
    for task in (TaskConfig("center-inpaint", 0.5), TaskConfig("outpaint", 0.5), TaskConfig("random-patches", 0.6)):
        mask = make_mask(task, 4, 32, model.mask_grid, torch.Generator().manual_seed(0))
        start, unknown, final = model.generate_tokens(x, mask, torch.Generator().manual_seed(0))
        assert torch.equal(unknown, model.token_mask(mask))
        assert torch.equal(final[~unknown], start[~unknown])
        assert final.min() >= 0 and final.max() < model.tokenizer.config.codebook_size
        assert not torch.equal(final[unknown], start[unknown])  # the hole was filled by sampling


def test_teacher_and_student_see_the_same_token_mask():
    teacher = build_model(TINY_VQGAN).eval()
    student = build_model(TINY_VQGAN).eval()
    student.load_state_dict(teacher.state_dict())
    x = _images()
    mask = make_mask(TaskConfig("center-inpaint", 0.75), 4, 32, teacher.mask_grid)
    ctx = teacher.sample_context(x, mask, torch.Generator().manual_seed(0))
    unknown = ctx["unknown"]
    assert torch.equal(unknown & ~teacher.token_mask(mask), torch.zeros_like(unknown))  # only hole tokens
    assert (unknown.sum(1) >= 1).all()
    with torch.no_grad():
        assert torch.equal(teacher.encode(x, mask, ctx), student.encode(x, mask, ctx))
        encoded = teacher.encode(x, mask, ctx)
    assert torch.equal(encoded[unknown], torch.zeros_like(encoded[unknown]))  # unknown tokens are not encoded


def test_tokenizer_training_saves_no_discriminator(tiny_model_dirs):
    tokenizer_dir = tiny_model_dirs["vqgan"].parent / "tokenizer"
    names = load_tensors(tokenizer_dir / "model.safetensors")
    assert names and not any("discriminator" in name for name in names)
    assert all(name.startswith("vq.") for name in names)
    model = load_model(tiny_model_dirs["vqgan"])
    assert not any("discriminator" in name for name in model.state_dict())
    tokenizer = VQTokenizer.from_pretrained(tokenizer_dir)
    assert all(torch.equal(v, model.tokenizer.state_dict()[k]) for k, v in tokenizer.state_dict().items())
    log = (tokenizer_dir / "train_log.jsonl").read_text()
    assert '"discriminator"' in log  # the adversarial loss was on after its warm-up


def test_a_trained_model_holds_its_tokenizer_unchanged_and_frozen(tiny_model_dirs):
    model = load_model(tiny_model_dirs["vqgan"])
    tokenizer = VQTokenizer.from_pretrained(tiny_model_dirs["vqgan"].parent / "tokenizer")
    assert all(torch.equal(v, model.tokenizer.state_dict()[k]) for k, v in tokenizer.state_dict().items())
    assert not any(p.requires_grad for p in model.tokenizer.parameters())


def test_dead_codes_are_restarted_from_the_batch():
    from i2i_unlearn.config import TokenizerTrainConfig
    from i2i_unlearn.train_tokenizer import TokenizerObjective
    model = build_model(TINY_VQGAN)
    objective = TokenizerObjective(model.tokenizer, TokenizerTrainConfig())
    objective.code_usage[3] = 0.0  # code 3 unused lately
    latents = torch.randn(2, model.tokenizer.config.latent_channels, 8, 8)
    before = model.tokenizer.vq.quantize.embedding.weight.clone()
    objective._restart_dead_codes(latents, torch.Generator().manual_seed(0))
    after = model.tokenizer.vq.quantize.embedding.weight
    vectors = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
    assert (vectors == after[3]).all(dim=1).any()  # now one of the batch's encoder outputs
    assert torch.equal(torch.cat([before[:3], before[4:]]), torch.cat([after[:3], after[4:]]))


def test_the_token_cache_returns_the_tokenizers_own_tokens_and_forgets_them_on_new_weights():
    model = build_model(TINY_VQGAN).eval()
    x = _images(6)
    direct = model.tokenizer.tokenize(x)
    assert torch.equal(model.tokenize(x[:2]), direct[:2])          # two misses
    assert torch.equal(model.tokenize(x[[4, 0, 5, 1]]), direct[[4, 0, 5, 1]])  # hits and misses, in order
    assert len(model._token_cache) == 4
    other = build_model(TINY_VQGAN)
    torch.manual_seed(123)
    for p in other.tokenizer.parameters():
        torch.nn.init.normal_(p)
    model.load_state_dict(other.state_dict())
    assert len(model._token_cache) == 0                             # stale tokens dropped
    assert torch.equal(model.tokenize(x), other.tokenizer.tokenize(x))


def test_a_student_shares_its_teachers_token_cache_only_while_their_tokenizers_are_the_same():
    import copy
    teacher = build_model(TINY_VQGAN).eval()
    student = copy.deepcopy(teacher)
    student.share_caches_with(teacher)
    x = _images(3)
    student.tokenize(x)
    assert len(teacher._token_cache) == 3                            # the student's tokens serve the teacher
    calls = []
    teacher.tokenizer.tokenize = lambda images: calls.append(len(images))
    assert torch.equal(teacher.tokenize(x), student.tokenize(x)) and calls == []   # all hits, no tokenizer pass
    del teacher.tokenizer.tokenize
    other = build_model(TINY_VQGAN)
    torch.manual_seed(123)
    for p in other.tokenizer.parameters():
        torch.nn.init.normal_(p)
    student.load_state_dict(other.state_dict())                       # new tokenizer: its own cache again
    assert len(teacher._token_cache) == 3 and len(student._token_cache) == 0
    assert torch.equal(student.tokenize(x), other.tokenizer.tokenize(x))
    assert torch.equal(teacher.tokenize(x), teacher.tokenizer.tokenize(x))
    stranger = build_model(TINY_VQGAN)
    stranger.load_state_dict(other.state_dict())
    stranger.share_caches_with(teacher)                               # another tokenizer: nothing shared
    assert stranger._token_cache is not teacher._token_cache


def test_ours_noise_target_is_tokenized_outside_the_cache_and_equals_the_cached_encoding():
    from i2i_unlearn.tasks import noise_image
    model = build_model(TINY_VQGAN).eval()
    x = _images(4)
    mask = make_mask(TaskConfig("center-inpaint", 0.5), 4, 32, model.mask_grid)
    noise = noise_image(x, "batch-gaussian", torch.Generator().manual_seed(0))
    with torch.no_grad():
        target = model.encode_noise(x, noise, mask, None)
        assert len(model._token_cache) == 0      # fresh noise at every step: caching it would evict the dataset
        forget_set = Batch(images=x, mask=mask, ctx=None, noise=noise)
        paper_target = get_method("ours", UnlearnConfig(method="ours", noise_context="noise")).forget_target(
            model, forget_set, None)             # the paper's T(n) path: the same noise, the same rule
        assert torch.equal(paper_target, target) and len(model._token_cache) == 0
        assert torch.equal(target, model.encode(noise, mask))   # the same target as through the cache
    assert len(model._token_cache) == 8          # whole and degraded noise images
