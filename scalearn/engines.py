"""How one optimizer step happens: plain PyTorch, or DeepSpeed in its place (ZeRO 0–3, optional offload).

The training loop calls the same four things on either engine: ``forward``, ``backward_and_step``,
``gathered`` (full parameter values, for reading or restoring state; ZeRO-3 keeps only a shard on each
rank, and reading the shard is how adapters end up saved as empty tensors, PEFT #1328) and the
learning-rate readout. DeepSpeed runs on the CPU over gloo as well, which is how it is tested here.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import time
from pathlib import Path

import torch

from scalearn.model import TransferModel
from scalearn.ports import free_port

logger = logging.getLogger(__name__)

# DeepSpeed builds its CPU communication op on first use (torch's JIT build, ~20-40 s). torch guards the build
# with a lock file and waits on it with no end; a build killed part-way leaves the file behind, and every later
# DeepSpeed run then hangs in silence (a CI run hung 90 minutes on one). A lock older than this is left over.
STALE_BUILD_LOCK_SECONDS = 600.0


def make_optimizer(model: TransferModel, learning_rate: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW (β 0.9/0.999, ε 1e-8); no weight decay on biases and normalisation weights (LayerNorm, and a
    decoder's RMSNorms: input_layernorm, q_norm, …), as HF's Trainer.

    Parameters named in ``model.learning_rates`` (name prefix → LR) get groups of their own, after the
    two groups at ``learning_rate``; the schedule scales every group's LR by the same factor.
    """

    def rate_of(name: str) -> float:
        return next((rate for prefix, rate in model.learning_rates.items() if name.startswith(prefix)), learning_rate)

    def decays(name: str) -> bool:
        return not (name.endswith("bias") or "norm" in name.lower())

    trainable = model.trainable_parameters()
    groups = []
    for rate in dict.fromkeys([learning_rate, *model.learning_rates.values()]):
        for decayed in (True, False):
            params = [p for name, p in trainable.items() if rate_of(name) == rate and decays(name) == decayed]
            groups.append({"params": params, "weight_decay": weight_decay if decayed else 0.0, "lr": rate})
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=learning_rate, betas=(0.9, 0.999), eps=1e-8)


def linear_schedule(optimizer, total_steps: int, warmup_ratio: float):
    """Linear warm-up over ``warmup_ratio`` of the steps, then linear decay to 0: HF's linear schedule, except
    that warm-up step k takes (k+1)/(w+1) of the rate where HF's takes k/w (whose first step, at 0, changes
    nothing)."""
    warmup = int(math.ceil(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def autocast(precision: str, device: torch.device):
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


class TorchEngine:
    """AdamW + schedule, gradient accumulation, clipping, AMP (GradScaler for fp16)."""

    name = "torch"

    def __init__(self, model: TransferModel, config, total_steps: int, device: torch.device):
        self.model, self.config, self.device = model, config, device
        self.optimizer = make_optimizer(model, config.learning_rate, config.weight_decay)
        self.scheduler = linear_schedule(self.optimizer, total_steps, config.warmup_ratio)
        self.scaler = torch.amp.GradScaler("cuda") if config.precision == "fp16" else None
        self.micro_batches = 0

    def forward(self, batch: dict) -> torch.Tensor:
        with autocast(self.config.precision, self.device):
            return self.model(**batch)

    def backward_and_step(self, loss: torch.Tensor, flush: bool = False) -> bool:
        """Accumulate; step at the accumulation boundary (or when ``flush``). True when a step happened."""
        loss = loss / self.config.gradient_accumulation
        (self.scaler.scale(loss) if self.scaler else loss).backward()
        self.micro_batches += 1
        if self.micro_batches % self.config.gradient_accumulation and not flush:
            return False
        self.micro_batches = 0
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.trainable_parameters().values(), self.config.max_grad_norm)
        overflowed = False
        if self.scaler:
            scale = self.scaler.get_scale()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            overflowed = self.scaler.get_scale() < scale  # fp16 overflow: GradScaler skipped the update
        else:
            self.optimizer.step()
        if not overflowed:  # as DeepSpeed: a skipped update does not advance the schedule
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return True

    def learning_rate(self) -> float:
        return self.scheduler.get_last_lr()[0]

    def gathered(self, parameters, modify: bool = False):
        return contextlib.nullcontext()


def clear_stale_build_locks(max_age: float = STALE_BUILD_LOCK_SECONDS) -> list[Path]:
    """Remove DeepSpeed op build locks older than ``max_age`` seconds (left by a killed build); the paths removed."""
    from torch.utils.cpp_extension import get_default_build_root

    # where torch builds: $TORCH_EXTENSIONS_DIR/<op>, else <its cache>/<python and CUDA tag>/<op>
    chosen = os.environ.get("TORCH_EXTENSIONS_DIR")
    locks = (
        Path(chosen).glob("deepspeed_*/lock") if chosen else Path(get_default_build_root()).glob("*/deepspeed_*/lock")
    )
    removed = []
    for lock in locks:
        with contextlib.suppress(FileNotFoundError):  # a build finishing now removes its own lock
            age = time.time() - lock.stat().st_mtime
            if age > max_age:
                lock.unlink()
                logger.warning(
                    "removed %s: a DeepSpeed op build lock left %.0f s ago by a build that never ended", lock, age
                )
                removed.append(lock)
    return removed


def ensure_process_group(device: torch.device) -> None:
    """One process without a launcher: become rank 0 of 1 (its store in a file), as DeepSpeed needs a group."""
    import deepspeed

    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda" and device.index is not None:  # DeepSpeed places the model on cuda:LOCAL_RANK
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        local = str(device.index) if device.type == "cuda" and device.index is not None else "0"
        defaults = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": local, "MASTER_ADDR": "127.0.0.1"}
        for key, value in defaults.items():
            os.environ.setdefault(key, value)
        if os.environ["WORLD_SIZE"] == "1":
            # alone, this process keeps the group's store in a file of its own: no port to find free and then
            # lose to another process before binding it (EADDRINUSE, seen on a busy machine), and none inherited
            # from a parent (a Ray worker inherits the driver's environment, and a port the driver may hold)
            os.environ["MASTER_PORT"] = str(free_port())  # unused by the file store; set for what reads it
            store = Path(tempfile.mkdtemp(prefix="scalearn-group-")) / "store"
            torch.distributed.init_process_group(backend, init_method=store.as_uri(), rank=0, world_size=1)
    clear_stale_build_locks()  # init_distributed loads the op on the CPU
    deepspeed.init_distributed(dist_backend=backend, verbose=False)


class DeepSpeedEngine:
    """DeepSpeed's engine in place of the optimizer step; our AdamW and schedule as its client objects."""

    name = "deepspeed"

    def __init__(self, model: TransferModel, config, total_steps: int, device: torch.device):
        import deepspeed

        if config.precision == "fp16" and device.type != "cuda":
            raise ValueError("precision fp16 needs a CUDA device; use bf16 or fp32 on the CPU")
        ensure_process_group(device)
        self.model, self.config, self.device = model, config, device
        self.micro_batches = 0
        world = torch.distributed.get_world_size()
        if config.batch_size % world:
            raise ValueError(f"batch_size {config.batch_size} must divide evenly over {world} ranks")
        optimizer = make_optimizer(model, config.learning_rate, config.weight_decay)
        scheduler = linear_schedule(optimizer, total_steps, config.warmup_ratio)
        zero = {"stage": config.zero_stage}
        if config.offload_optimizer:
            zero["offload_optimizer"] = {"device": "cpu"}
        # with the optimizer offloaded DeepSpeed asks for its own CPU Adam (an op it compiles); our AdamW on the
        # offloaded fp32 state computes the same step as on every other engine (slower per step)
        forced = {"zero_force_ds_cpu_optimizer": False} if config.offload_optimizer else {}
        if config.zero_stage == 3:
            zero["stage3_param_persistence_threshold"] = config.zero3_persistence_threshold
        ds_config = {
            "train_micro_batch_size_per_gpu": config.batch_size // world,
            "gradient_accumulation_steps": config.gradient_accumulation,
            "gradient_clipping": config.max_grad_norm,
            "zero_optimization": zero,
            "zero_allow_untested_optimizer": True,  # our AdamW is the client optimizer
            "bf16": {"enabled": config.precision == "bf16"},
            "fp16": {"enabled": config.precision == "fp16"},
            "steps_per_print": 2**31 - 1,
            "wall_clock_breakdown": False,
            **forced,
        }
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config
        )
        self.zero_stage = config.zero_stage

    def forward(self, batch: dict) -> torch.Tensor:
        return self.engine(**batch)

    def backward_and_step(self, loss: torch.Tensor, flush: bool = False) -> bool:
        """As the torch engine: a step every ``gradient_accumulation`` micro-batches and at an epoch's last one
        (``flush``), so both take the schedule's steps; the boundary is ours, set before each backward."""
        self.micro_batches += 1
        boundary = flush or self.micro_batches % self.config.gradient_accumulation == 0
        if self.config.gradient_accumulation > 1:
            self.engine.set_gradient_accumulation_boundary(boundary)
        self.engine.backward(loss)
        self.engine.step()
        if boundary:
            self.micro_batches = 0
        return boundary

    def learning_rate(self) -> float:
        return self.scheduler.get_last_lr()[0]

    def gathered(self, parameters, modify: bool = False):
        """Full values of ZeRO-3-partitioned parameters inside the block; ``modify`` writes them back."""
        if self.zero_stage != 3:
            return contextlib.nullcontext()
        import deepspeed

        return deepspeed.zero.GatheredParameters(list(parameters), modifier_rank=0 if modify else None)


ENGINES = {"torch": TorchEngine, "deepspeed": DeepSpeedEngine}
