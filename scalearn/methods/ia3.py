"""(IA)³: rescale keys, values and the FFN activation with learned vectors (docs/method.md §3; Liu et al. 2022)."""

from __future__ import annotations

from scalearn.methods.base import Method, Positive, register


@register("ia3")
class IA3Method(Method):
    learning_rate: Positive = 5e-3
    """scripts/ia3: LR 5e-3 (docs/method.md §3)."""

    def _build(self, encoder, head, sources):
        from scalearn.tuners import IA3, intermediate_size
        from scalearn.tuners.sites import projection_shape

        config, kv_size = encoder.config, projection_shape(encoder, "value")[1]
        tuner = IA3(config.hidden_size, intermediate_size(config), config.num_hidden_layers, kv_size=kv_size)
        return tuned_model(encoder, head, tuner)


def tuned_model(encoder, head, tuner):
    """A tuner wired into the frozen encoder; it and the head(s) train."""
    from scalearn.model import TransferModel

    model = TransferModel(encoder, head, tuner=tuner)
    model.set_trainable(model.tuner, model.head)
    return model
