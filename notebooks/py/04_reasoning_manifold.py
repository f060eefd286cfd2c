# %% [markdown]
# # Where does wrong reasoning leave the manifold of right reasoning?
#
# *My model answers some problems right and some wrong. Layer by layer, do the hidden states of the wrong answers drift away from the cloud of right ones — and where does the drift start?*
#
# This notebook re-implements **REMA** (Li et al. 2025, *REMA: A Unified Reasoning Manifold Framework for Interpreting Large Language Model*) and adds what a careful reader wants beside it: a **null control**, the **intrinsic dimension** of the manifold per layer, and how **separable** right and wrong are.
#
# **Learning goals**
#
# 1. Read REMA's rule: at layer $l$ the *manifold* is the cloud of correct samples; an error's deviation $D_j(l)$ is its mean distance to its $k$ nearest correct samples; it *diverges* at the first layer where $D_j(l) > \mu_l + c\,\sigma_l$, with $\mu_l, \sigma_l$ the correct samples' own (leave-one-out) deviations and $c$ the threshold in standard deviations (`threshold_sd`).
# 2. Tell a real divergence from a chance one: the null control runs the same rule on correct samples only.
# 3. See that "detected" is not "started": a weak drift is found layers after it begins.
# 4. Connect deviation to geometry: intrinsic dimension (TwoNN), PCA dimension, and an RBF-SVM.
# 5. Look at a real (tiny) transformer's hidden states and read what they do — and do not — show.
#
# **How to use.** Each app has a *source* (where the hidden states come from) and an *analysis* (k, the threshold, standardisation, the null control). Moving *k*, the *threshold (sd)* or the *2-D view layer* is instant; changing the source or the analysis recomputes with a progress bar (Cancel stops it; the last good picture stays). Press ▶ next to the layer slider to play through the layers.

# %% [markdown]
# ## 1. Synthetic hidden states with a planted divergence
#
# Every sample lives on a curved 4-dimensional manifold in $\mathbb{R}^{128}$ that rotates a little from layer to layer. Errors follow the same law until layer `diverge_at` (6); from there they are pushed off the manifold, a bit further at every layer. So we **know** the answer REMA should find.

# %%
from explorer.manifold import ManifoldApp

app = ManifoldApp()
app

# %% [markdown]
# ## What to try (synthetic)
#
# 1. Read the **deviation** panel: where do the red errors leave the blue band of correct samples? Where does the grey null control go?
# 2. In the **divergence layer** histogram, most errors cross at layer 6. But a few "diverge" at layer 0, and so do some *correct* samples of the null control. Why at layer 0, and why never later?
# 3. Raise the **threshold (sd)** from 2 to 4. Where do the chance divergences go? What happens to the real ones?
# 4. Choose the preset *synthetic: weak drift, detected late* (drift starts at layer 3, strength 0.3). At which layer does REMA report the divergence?
# 5. Choose *synthetic: no planted drift (all chance)*. How many errors "diverge" now, compared with the null control?
# 6. Look at **intrinsic dimension**: the data is a 4-dimensional curved manifold. What do TwoNN and PCA-90 % say, and why do they differ? Raise the noise to 0.05.

# %% [markdown]
# <details><summary>Answers</summary>
#
# 1. Up to layer 5 the errors' median D/μ sits at 0.92–0.93, next to the correct samples' own median of 0.91 (these distances are skewed, so their median lies below their mean μ, the line at 1); from layer 6 it climbs steeply (2.5 at layer 6, 13.9 at layer 11). The null control's pseudo-errors are correct samples, so they stay on the blue band at every layer: that is what "no drift" looks like.
# 2. A divergence layer is the *first* crossing. Samples in the tails of the latent distribution are far from their neighbours at *every* layer, so they cross already at layer 0 — errors and correct samples alike (the grey bar at layer 0 is about as high as the red one). The noise is re-drawn per layer, but the tail position is not, so the same samples cross first at layer 0 and there is nothing left for later layers.
# 3. With a threshold of 4 sd it moves to μ + 4σ: the chance crossings at layer 0 nearly vanish (for both groups) while the real divergences stay at layer 6, because the errors' deviation there is many σ above μ. Lowering it to 1 raises the chance crossings at layer 0 to 15–19 % in *both* groups (18.5 % of the errors, 15.4 % of the pseudo-errors): the threshold trades false alarms for sensitivity, and the grey null bars tell you the false-alarm rate.
# 4. The drift starts at layer 3 but grows by 0.3 per layer; REMA reports most divergences at layers 6 and 7 (31 % and 49.5 % of the errors), three to four layers late, when the accumulated displacement first beats μ + 2σ. The divergence layer is a *detection* time, not an onset time: the AUROC (separability panel, 0.58) and Welch's t (table, 3.1) already rise at layer 3.
# 5. Only the chance crossings are left: the red and grey bars look alike, the relative deviation is about 0.03 at every layer, and 6.5 % of the errors cross somewhere against the rule's false-alarm rate of 5.5 % on the null control (4–7 % over 5 random splits; the status line). Without a null control one would report "6 % of errors diverge at layer 0".
# 6. TwoNN (nonlinear, from each point's two nearest neighbours) gives 4.8–5.0 at every layer for the 4-dimensional curved manifold: the curvature and the noise at the scale of the nearest neighbours add a little. PCA needs 4 linear directions for 90 % of the variance, because the bends (the sine terms) carry little variance. With noise 0.05 the neighbourhoods fill up in all 128 directions: TwoNN jumps to 11.3–12.4 (it works at the smallest scales, where the noise lives), while PCA-90 % rises less, from 4 to 7 (the noise adds only a little to the total variance).
# </details>

# %% [markdown]
# ## 2. A real (tiny) transformer
#
# `scripts/train_manifold_model.py` trains a 6-block causal transformer ($d_{model}=64$, 0.2 M parameters) in about three minutes on a (shared) CPU core on **chains of modular operations**: the prompt `a o1 b o2 c o3 d =` (digits mod 13, operations + − × applied left to right), the answer is the running values `s1 s2 s3 ;`. Each step uses the model's *own* previous output, so one slip derails the chain. The shipped weights are in `explorer/manifold/data/`. With the tiny model as its source, the app runs the model on held-out chains it never trained on, pools the hidden state at every generation step (REMA's representation), and checks the final value.
#
# **Choose the preset *tiny model: chains of modular operations* in the app above** (or set *source* to `tiny model`). The first run takes a few seconds: the model generates the answers and REMA analyses every layer; after that the app switches between the two sources at once.

# %% [markdown]
# ### What the tiny model shows
#
# Numbers for the default view (1000 held-out chains, seed 0, k = 5, threshold 2 sd); each is asserted by `tests/claims/test_manifold_claims.py`.
#
# * **94 %** of the chains come out right (938 of 1000). The 62 errors are mostly chains that contain **×**: 76 % of the errors (47 of 62) against 26 % of all chains. The model saw × in only 10 % of the operations it trained on and learned + and − first.
# * **Embedding layer.** With REMA's representation (the last position at every generation step) the input tokens there are the digits the model wrote, and they look the same for right and wrong chains: AUROC 0.48, no deviation.
# * **Blocks 1 → 6.** The errors' deviation and its AUROC rise block by block, to 0.74 at block 6, and the RBF-SVM's balanced accuracy rises too (0.54 at block 1, 0.68 at block 6). Welch's test, corrected for the 8 layers by Holm, is significant from block 4 on (adjusted p = 0.029 at block 4; the final norm too, with the sign inverted, see below).
# * **But much of that is the kind of input.** × chains sit apart from + − chains, and errors are mostly × chains. Compared only with correct chains that have the *same number of ×* (the dotted *matched* AUROC), the errors' AUROC at block 6 is 0.58, not 0.74, and below 0.5 in blocks 1–4. So REMA's deviation here mostly tracks *what was asked*, and only a little *how it was answered*.
# * **Divergence layers.** The histogram peaks at block 4: 7 of the 62 errors first cross μ + 2σ there, against 7 of the 469 pseudo-errors of the null control's first split (11 % against 1.5 %; Fisher's exact test p = 4e-4). Over all layers 24 % of the errors cross somewhere, while the rule's any-layer false-alarm rate on the null control is 10 % (9–13 % over 5 random splits): most wrong chains stay *inside* the correct cloud.
# * **Final norm** (grey). The signal inverts: AUROC 0.28, Welch t = −6.1: errors are *closer* to the correct cloud than correct samples are to each other. It is not a matter of scale: AUROC and the μ + cσ rule do not change when a whole layer is rescaled. The final LayerNorm rescales *each state* to its own length, which reorders distances; why errors end up closer is an observation here, not something this notebook explains. Read REMA's rule at that layer with care; the app shades it.
# * **Intrinsic dimension.** In blocks 1–6 the correct cloud has 9.7–13.5 dimensions by TwoNN (PCA needs 21–27 for 90 % of the variance) inside $d_{model} = 64$: a low-dimensional manifold, as REMA reports for large models. At the embedding layer the states are averages of four token embeddings: 829 of the 938 correct states have a twin that differs only by float32 rounding (the table's *duplicates*), TwoNN drops them, and its value on the 109 left means nothing.
#
# **Why this task and not the first one.** The first version trained on + − × equally often and stopped at 82 %. Its errors were scattered slips of a half-trained model, and their hidden states matched the correct ones at every layer (AUROC ≈ 0.5 everywhere, the same as the null control; an observation of that version, not rerun here). Making × rare gave the model a *systematic* weakness, which REMA can see, and the matched comparison shows how much of it is the input.

# %% [markdown]
# ## What to try (tiny model)
#
# 1. Switch *pooling* to `last_token`. What happens at the embedding layer, and why does TwoNN show a gap there?
# 2. Tick *standardise features*. Does the picture change? Why might it for a model with a final LayerNorm?
# 3. Set the threshold to 1 and compare the red and grey histograms. Are the errors' divergences more than chance?
# 4. Set *pooling* to `mean_all`. What changes at the embedding layer?

# %% [markdown]
# <details><summary>Answers</summary>
#
# 1. With `last_token` the representation is the hidden state at the final generation step. Its input is the token written one step before the last: the final value s3, since the last token written, the end token `;`, is never fed back. At the embedding layer that is one of 13 digits at one position, so there are only 13 distinct states: all 938 correct samples have exact twins, every baseline distance is 0 (μ = 0, so the deviation curve has a gap there) and TwoNN (which needs $r_1 > 0$) is undefined (n/a in the table). Deeper layers mix in the earlier tokens through attention and the cloud unfolds.
# 2. Almost nothing changes (AUROC at block 6: 0.737 either way): every feature of this model's residual stream has a similar scale. Standardisation matters when a few dimensions carry huge activations (the "massive activations" of large LLMs), because those would otherwise dominate every distance. Centring is a separate thing: the kNN engine uses it for speed with large *shared* offsets; distances, and so every number here, do not change.
# 3. At a threshold of 1 sd both groups "diverge" early and often: a normal sample exceeds μ + σ at a given layer about one time in six, so the rule's any-layer false-alarm rate on the null control jumps to 48 % (44–56 % over the splits), and at the embedding layer and block 1 the red bars (7 of 62 errors each, 11 %) are about as high as the grey ones (19 % and 10 % of the pseudo-errors). Only the excess of red over grey is signal; at a threshold of 2 sd it sits at block 4.
# 4. With `mean_all` (an average over the prompt tokens too) the embedding layer already separates right from wrong (AUROC 0.63), because the prompt contains the × that predicts failure. Matched by the number of ×, that AUROC is 0.44: it is the input type. REMA's pooling hides the prompt, so what it finds reflects more of the model's processing and less of its input.
# </details>

# %% [markdown] tags=["lab-only"]
# ## Under the hood
#
# The same analysis with the public API: `synthetic` makes the data, `rema` runs the rule, `knn_distances` is the engine (a float32 matrix product proposes the neighbours, a rounding-error bound proves the choice, near ties are settled in float64: exact neighbours), `two_nn` the intrinsic dimension.

# %% tags=["lab-only"]
import numpy as np

from explorer.manifold import knn_distances, rema, synthetic, two_nn

layers, correct = synthetic(n_layers=8, dim=64, manifold_dim=3, n_correct=400, n_error=100, diverge_at=4, seed=1)
result = rema(layers, correct, k=5, threshold_sd=2.0)

print("layer  mu     sigma  mean D/mu  AUROC  share diverged here (errors | null)")
first = np.bincount(result.divergence_layer[result.divergence_layer >= 0], minlength=8) / (~correct).sum()
null_first = np.bincount(result.null_divergence_layer[result.null_divergence_layer >= 0], minlength=8) / result.null_divergence_layer.size
for l in range(8):
    print(f"{l:5d}  {result.baseline_mean[l]:.3f}  {result.baseline_std[l]:.3f}  {1 + result.relative_deviation[l]:8.2f}"
          f"  {result.auroc[l]:.2f}   {first[l]:.2f} | {null_first[l]:.2f}")

# the deviation of the errors at layer 6, straight from the kNN engine
print("mean D at layer 6:", knn_distances(layers[6][~correct], layers[6][correct], k=5).mean().round(3),
      "=", result.deviations[6].mean().round(3))
print("TwoNN of the correct cloud at layer 0:", round(two_nn(layers[0][correct]), 2), "(planted: 3)")

# %% [markdown]
# ## References
#
# * B. Li et al. (2025). *REMA: A Unified Reasoning Manifold Framework for Interpreting Large Language Model*, arXiv:2509.22518 — the deviation, baseline and divergence-layer rule re-implemented here.
# * E. Facco, M. d'Errico, A. Rodriguez, A. Laio (2017). *Estimating the intrinsic dimension of datasets by a minimal neighborhood information.* Scientific Reports 7:12140 — TwoNN.
# * A. Borah et al. (2025). *Alignment Quality Index (AQI): beyond refusals — AQI as an intrinsic alignment diagnostic via latent geometry* — the latent-geometry (cluster separation) view of right vs wrong behaviour that the separability panel echoes.
# * N. Halko, P.-G. Martinsson, J. Tropp (2011). *Finding structure with randomness* — the randomised PCA of the 2-D view.
# * B. L. Welch (1947). *The generalization of "Student's" problem when several different population variances are involved* — the per-layer t-test.
