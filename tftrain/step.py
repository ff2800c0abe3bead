"""One optimiser step of the trainer, ``make_train_step``: the trainer's and the benchmarks' own.

The micro-steps' gradients are summed in a ``tf.range`` loop (XLA-compiled when ``jit``),
all-reduced across replicas, clipped by global norm and applied; see ``make_train_step``.
"""

from __future__ import annotations

from tftrain import model


def make_train_step(net, opt, strategy, step, *, batch_size: int, accumulate: int, block: int,
                    clip_norm: float, jit: bool):
    """``train_step(iterator) -> (mean loss, gradient norm)``: one optimiser step as a
    ``tf.function`` that pulls one global batch from ``iterator`` and adds 1 to ``step``.

    The loss is the summed token cross-entropy over the global batch divided by its token count
    (``batch_size x accumulate x block x replicas``), scaled when ``opt`` is a loss-scale (fp16)
    optimiser. ``jit`` on one device compiles the whole step (forward, backward, clipping, the
    optimiser update) as one XLA program; across replicas only the gradients are compiled (the
    all-reduce runs outside XLA).
    """
    import tensorflow as tf
    import tf_keras

    from tftrain import optim

    variables = net.trainable_variables
    global_tokens = float(batch_size * accumulate * block * strategy.num_replicas_in_sync)
    scaled = isinstance(opt, tf_keras.mixed_precision.LossScaleOptimizer)
    single = strategy is tf.distribute.get_strategy()

    def grads_of(x, y):
        with tf.GradientTape() as tape:
            total, _ = model.token_loss(net, x, y, training=True)
            loss = total / global_tokens
            if scaled:
                loss = opt.get_scaled_loss(loss)
        grads = tape.gradient(loss, variables)
        return total, [tf.convert_to_tensor(g) for g in grads]

    def micro_grads(x, y):
        if accumulate == 1:
            return grads_of(x, y)
        xs = tf.reshape(x, [accumulate, batch_size, block])
        ys = tf.reshape(y, [accumulate, batch_size, block])
        loss_sum, grads = grads_of(xs[0], ys[0])
        for i in tf.range(1, accumulate):
            total, more = grads_of(xs[i], ys[i])
            grads = [a + b for a, b in zip(grads, more)]  # noqa: B905 (AutoGraph zip: no strict=)
            loss_sum += total
        return loss_sum, grads

    if jit and not single:
        micro_grads = tf.function(micro_grads, jit_compile=True)

    def replica_step(x, y):
        loss_sum, grads = micro_grads(x, y)
        if not single:
            grads = tf.distribute.get_replica_context().all_reduce("sum", grads)
        if scaled:
            grads = opt.get_unscaled_gradients(grads)
        grads, norm = optim.clip(grads, clip_norm)
        opt.apply_gradients(zip(grads, variables, strict=True), skip_gradients_aggregation=True)
        return loss_sum, norm

    if jit and single:
        replica_step = tf.function(replica_step, jit_compile=True)

    @tf.function
    def train_step(iterator):
        x, y = next(iterator)
        loss_sum, norm = strategy.run(replica_step, args=(x, y))
        loss_sum = strategy.reduce("sum", loss_sum, axis=None)
        step.assign_add(1)
        return loss_sum / global_tokens, strategy.experimental_local_results(norm)[0]

    return train_step
