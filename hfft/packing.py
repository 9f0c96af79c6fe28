"""Whether a model keeps packed samples apart: several samples in one row, told apart only by position ids
that restart at each sample (transformers builds a block-diagonal causal mask from them for its attention
implementations; models or kernels that ignore them would let samples attend to each other)."""

from __future__ import annotations

from typing import Any


def packing_isolated(model: Any, tolerance: float = 1e-3) -> tuple[bool, str]:
    """Run two short random samples separately and packed into one row; (True, why) when the logits agree."""
    import torch

    vocab = model.get_input_embeddings().num_embeddings
    generator = torch.Generator().manual_seed(0)
    first, second = (torch.randint(3, vocab, (1, n), generator=generator) for n in (5, 7))
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            alone = [model(input_ids=s.to(device), use_cache=False).logits.float() for s in (first, second)]
            positions = torch.cat([torch.arange(5), torch.arange(7)])[None]
            packed = model(
                input_ids=torch.cat([first, second], 1).to(device), position_ids=positions.to(device), use_cache=False
            ).logits.float()
    except Exception as err:  # a model that does not take position_ids
        return False, f"{type(model).__name__} cannot run packed rows ({type(err).__name__}: {err})"
    finally:
        model.train(was_training)
    difference = float((torch.cat(alone, 1) - packed).abs().max())
    attention = getattr(getattr(model, "config", None), "_attn_implementation", "?")
    if difference > tolerance:
        return False, (
            f"with {attention} attention, samples packed into one row see each other (logits differ by "
            f"{difference:.2g} from separate rows)"
        )
    return True, f"{attention} attention keeps packed samples apart (logits within {difference:.1g} of separate rows)"
