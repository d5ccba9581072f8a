import GenTensor

/// Losses of the book's generative models, built on the fused loss ops in GenTensor
/// (``Tensor/binaryCrossEntropy(logits:targets:reduction:)``,
/// ``Tensor/klDivergenceDiagonalGaussian(mean:logVariance:)``, ``Tensor/meanSquaredError(_:_:reduction:)``).
public enum Losses {
    /// Binary cross-entropy from logits against a constant label for every element (1 = real, 0 = fake),
    /// averaged: Keras `BinaryCrossentropy(from_logits=True)(full_like(logits, label), logits)`.
    public static func binaryCrossEntropy(logits: Tensor, label: Float) -> Tensor {
        Tensor.binaryCrossEntropy(logits: logits, targets: Tensor(repeating: label, shape: logits.shape))
    }

    /// GAN discriminator loss (Goodfellow et al., 2014; DCGAN): `BCE(real, 1) + BCE(fake, 0)`, each a mean
    /// over its batch. `realLabel` below 1 gives one-sided label smoothing (Salimans et al., 2016).
    public static func discriminator(realLogits: Tensor, fakeLogits: Tensor, realLabel: Float = 1) -> Tensor {
        binaryCrossEntropy(logits: realLogits, label: realLabel) + binaryCrossEntropy(logits: fakeLogits, label: 0)
    }

    /// Non-saturating GAN generator loss: `BCE(D(G(z)), 1)`, mean over the batch.
    public static func generator(fakeLogits: Tensor) -> Tensor {
        binaryCrossEntropy(logits: fakeLogits, label: 1)
    }

    /// Variational autoencoder loss per Chollet (ch. 8): reconstruction `Σ` over each sample's
    /// elements of the squared error (or any per-batch `reconstruction` term), plus
    /// `klWeight · mean_batch KL(q(z|x) ‖ N(0, I))`. Returns a rank-0 tensor.
    ///
    /// - Parameters:
    ///   - reconstruction: rank-0 reconstruction loss already averaged over the batch.
    ///   - mean, logVariance: `[N, latent]` encoder outputs.
    public static func vae(reconstruction: Tensor, mean: Tensor, logVariance: Tensor, klWeight: Float = 1) -> Tensor {
        precondition(reconstruction.count == 1, "Losses.vae: reconstruction must be a scalar, got \(reconstruction.shape)")
        let kl = Tensor.klDivergenceDiagonalGaussian(mean: mean, logVariance: logVariance).mean()
        return reconstruction.reshaped([]) + kl * klWeight
    }
}
