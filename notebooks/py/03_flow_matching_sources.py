# %% [markdown]
# # Flow matching: is there a better source than the Gaussian?
#
# Flow matching learns a velocity field $v(x, t)$ that carries a **source** distribution ($t=0$) to the data ($t=1$).
# It is trained on straight lines between pairs $(x_0, x_1)$:
# $x_t = (1-t)\,x_0 + t\,x_1$, target velocity $u_t = x_1 - x_0$, loss $\mathbb{E}\,|v(x_t, t) - u_t|^2$.
# Nothing in this recipe says the source must be a standard Gaussian. So: **what goes wrong with a source that
# approximates the data, one that is too concentrated in direction, one with the wrong norm — why does the plain
# Gaussian work so well, and what do optimal-transport couplings change?**
#
# **Learning goals**
# 1. See why paths that *cross* make a flow curved, and why curved flows need many solver steps; see how a minibatch OT coupling removes most crossings.
# 2. Read the 2D simulation of high-dimensional flow matching: a Gaussian in high dimension is a thin shell far from the data (norm misalignment); what norm alignment, directional caps and pruning do.
# 3. See two failure modes of "clever" sources: a density approximation that inherits its missing modes, and a learned source that collapses without a variance regulariser.
# 4. Judge a flow by several numbers at once: W2 (with its noise floor), normalised W2, failure rate, coverage, mode masses, straightness, crossings.
#
# **How to use this (two minutes):** pick a *preset* or change target, source and coupling on the left.
# All models of the default grids are already trained (shipped weights), so every view updates at once; the
# **steps**, **solver**, **time** and **pruning** controls never need training. Changing a source option or a training
# setting shows the source only, until you press **Train grid** (progress bar, live preview, Cancel; about half a minute for the 12 models of a grid).
# The status line under the title says what happened, or what was wrong.

# %% [markdown] tags=["lab-only"]
# *In JupyterLab: run the cell below (Shift+Enter), or Run All, to start the app.*

# %%
from explorer.flows import FlowsApp

app = FlowsApp()
app

# %% [markdown]
# ## What to try
#
# **1. Two moons, 2 Euler steps.** Use the presets *two moons: independent coupling, 2 steps* and *two moons: OT coupling, 2 steps*.
# Why does the OT-coupled flow already land on the moons with two steps, while the independent one does not? Compare the
# *straightness* and *crossings* columns of the table.

# %% [markdown]
# <details><summary>Answer</summary>
#
# With independent pairs, about a quarter of the training segments $x_0 \to x_1$ cross each other (crossings ≈ 0.25).
# Where segments cross, the network can only learn their *average* direction, so the learned flow bends: its paths carry
# ≈ 1.8 times the kinetic energy of straight paths between the same end points (*straightness*: mean path energy over mean
# squared displacement, 1 for straight paths). A 2-step Euler solver cuts the corners: W2 ≈ 1.43. The samples do not fly
# off: most still land near data (failure rate ≈ 0.27), but they bunch up and leave parts of the moons empty (coverage
# ≈ 0.40: only 40 % of the data points have a generated point within the distance to their 5th nearest data
# neighbour).
# Exact minibatch OT pairs each $x_0$ with a nearby $x_1$; its segments almost never cross (≈ 0.01), the flow is
# straight (≈ 1.01) and one or two Euler steps are already about as good as 32 (W2 ≈ 0.41 at 1 step, ≈ 0.38 at 2 and at 32,
# against a noise floor of ≈ 0.30). Look at *W2 against steps*: the solid (OT) curves are flat, the dashed (independent) ones need 8–16 steps to come down.
# Every training minibatch of 256 pairs is coupled exactly (not approximately): a shortest augmenting path solver
# started from coarse-to-fine potentials does it in well under a millisecond (`explorer/flows/assignment.py`).
#
# </details>

# %% [markdown]
# **2. The simulation: norm misalignment.** Choose the preset *simulation: the high-dim Gaussian ring (wrong norm)*.
# The data are three modes (5 / 30 / 65 %) at the norm real data would have; the "Gaussian" is how a 64-dimensional Gaussian
# looks through its norm: a thin ring at twice the data's radius. What must every trajectory do first? Then choose
# *simulation: norm-aligned ring* (scaled so that $E|x_0| = E|x_1|$): what improves, at 2 and at 4 steps, and what does not?

# %% [markdown]
# <details><summary>Answer</summary>
#
# From the ring every path must first travel *inwards* by the norm gap before it can go anywhere useful, and all of them pass
# through the same region; at 2 steps most samples land off the data (failure rate ≈ 0.84). The norm-aligned ring starts
# at the data's radius: paths are shorter and the failure rate at 2 and 4 steps drops (≈ 0.70 and ≈ 0.28 against ≈ 0.84
# and ≈ 0.43); W2 at 2 and 4 steps is lower too (≈ 0.62 and ≈ 0.42 against ≈ 0.73 and ≈ 0.59), and with the shipped models
# also at 16 steps (≈ 0.24 against ≈ 0.33). What does not improve: the independent coupling still has to move mass
# *around* the ring to the right modes, so the norm-aligned flow is not straight (straightness ≈ 1.8 in the table).
# How much of this is the seed? Retrained with seeds 1–3 (an observation, not part of the tests), the lower failure rate
# at 2 and 4 steps held for every seed, while at 16 steps the norm-aligned flow was better for two of the three
# (W2 0.24–0.32 against 0.27–0.40 over seeds 0–3). Switch the coupling to OT: both sources then reach W2 ≈ 0.23 at 16
# steps and ≈ 0.28 already at 2 steps — the coupling matters more than the norm.
#
# </details>

# %% [markdown]
# **3. Narrow the caps: why do the trajectories get entangled?** Pick *directional caps*, then the preset *simulation: narrow caps (tau 0.99)*.
# The directional source keeps only Gaussian draws within $\cos(x_0, \mu_k) \ge \tau$ of the data's directions $\mu_k$ (spherical k-means):
# the larger $\tau$, the narrower the caps. Follow the magenta paths: where do they start? Then compare with $\tau = 0.9$ at 16 steps.

# %% [markdown]
# <details><summary>Answer</summary>
#
# All caps are equally wide, so each cap holds the same share of the source (1/3 each) while the modes weigh 5 / 30 / 65 %.
# The cap that points at the 5 % mode must send most of its third elsewhere: more than a quarter of all the mass (1/3 − 5 %) has to leave its
# own direction and cross the paths of the other caps, and the velocity field can only average crossing transports. That is
# the entanglement: the bundle leaving the bottom cap splits and bends towards the big mode, and most misses (magenta) are on
# it. Narrow caps concentrate each cap's mass on a few rays, so the bundles are tighter, but the redistribution is the same.
# Does narrowing make it worse? With the shipped models W2 at 16 steps is ≈ 0.34 for τ = 0.99 and ≈ 0.50 for τ = 0.9, but
# retrained with seeds 1–3 (an observation, not part of the tests) the two overlap (τ = 0.99: 0.30–0.46, τ = 0.9:
# 0.28–0.62 over seeds 0–3, and τ = 0.9 was the better one for one seed): at this size the training seed matters more
# than τ — change *seed* and press **Train grid** to see it. The mode masses are off for both: with the shipped models the
# small mode gets ≈ 0.055 (τ = 0.99) and ≈ 0.08 (τ = 0.9), the big one ≈ 0.63 and ≈ 0.59 instead of 0.65. Restricting the
# source to where the data are is only a gain when the restriction respects how much data lies in each direction.
#
# </details>

# %% [markdown]
# **4. Why does the density-approximation source lose the small mode?** Pick the preset
# *simulation: density approximation (2 components)* and read the mode masses under the table at 2, 4 and 16 steps.

# %% [markdown]
# <details><summary>Answer</summary>
#
# The source is a Gaussian mixture fitted to the data with fewer components than modes (here 2 for 3 modes, on 200 points):
# it places almost no mass near the 5 % mode. Flow matching can in principle move mass anywhere, but the source points that
# must reach the small mode start on a big one and travel far, across other paths: this flow is the least straight of
# the grid (straightness ≈ 2.3: its paths carry 2.3 times the energy of straight ones). With few steps the flow inherits
# the source's gap: the small mode gets ≈ 1.2 % at 2 steps, ≈ 2.0 % at 4 and still only ≈ 3.3 % at 16 steps instead of 5 %.
# A source that imitates the data inherits its mistakes; the plain Gaussian has no such mistakes to inherit.
#
# </details>

# %% [markdown]
# **5. Pruned sampling.** Choose *simulation: pruned sampling*: source draws whose direction is farther than
# $\arccos(\tau)$ from every data direction (the shaded red wedges) are rejected before integration; the status
# line says which share of the source that removes. Compare the failure rate, coverage and mode masses with pruning on and off,
# at 4 and 16 steps, and change the prune tau. Is pruning free?

# %% [markdown]
# <details><summary>Answer</summary>
#
# At τ = 0.9 every direction farther than 25.8° from all data is pruned: exactly 13.8 % of the ring's draws (the ring is
# the same in every direction, so its pruned share is the pruned share of directions). Pruning removes the draws that start
# where there is no data. But a trained flow does not send those draws into the void: it has a fixed map from source
# directions to modes, and the pruned draws were *feeding* the modes beside them. At 16 steps, removing them shifts the mode
# masses (≈ 0.04 / 0.38 / 0.58 against ≈ 0.05 / 0.27 / 0.68 unpruned, for the target's 0.05 / 0.30 / 0.65) and W2 rises
# (≈ 0.57 against ≈ 0.33), while the failure rate drops a little (≈ 0.17 against ≈ 0.24). At 4 steps, pruning lowers W2
# (≈ 0.42 against ≈ 0.59). Raise τ and more is pruned (τ = 0.95: 23.9 %, τ = 0.99: 40.8 %). Retrained with seeds 1–3 (an
# observation, not part of the tests), pruning raised W2 at 16 steps for every seed and pushed mass into the middle mode for
# every seed (0.36–0.38 against 0.26–0.27), while its gain at 4 steps held for two of the three: which directions feed which
# mode is learned anew by each flow.
#
# </details>

# %% [markdown]
# **6. A learned source and its collapse.** Pick the source *learned source* on two moons (it learns
# $x_0 = \mu_c + \sigma_c \varepsilon$, one component per data cluster $c$, jointly with the flow), then the preset
# *learned source without variance regulariser*. What happens to $\sigma$, and why does the loss *want* that?

# %% [markdown]
# <details><summary>Answer</summary>
#
# The flow-matching loss contains an irreducible part, the variance of $x_1 - x_0$ given $x_t$. If each component's
# $\sigma_c$ shrinks to 0, every $x_0$ is determined by its cluster and that variance vanishes — so gradient descent happily
# collapses the source (σ ≈ 0.01; the status line warns). A collapsed source generates only a few points' worth of variety:
# W2 ≈ 1.13 against ≈ 0.46 with the regulariser (8 steps). The variance regulariser (the variance part of KL to N(0, I))
# keeps σ away from 0; the directional alignment loss $1 - \cos(\mu_c, x_1)$ turns each component's mean $\mu_c$ towards the
# data of its cluster ("Better Source, Better Flow"; the radius of $\mu_c$ is kept positive, so the mean itself, not just an
# angle, points at its cluster). With the OT coupling, pairs are exchanged only within a cluster, so every $x_0$ stays paired
# with data of the cluster it was drawn for.
#
# </details>

# %% [markdown] tags=["lab-only"]
# ## Under the hood
#
# The same building blocks, through the public API: a target, a source, a short training run with both couplings, sampling
# with 2 Euler steps, and the exact W2 against fresh data (with its noise floor).

# %% tags=["lab-only"]
from explorer.flows import sample, source, target, train, w2

data = target("moons", n=512, seed=1)
print("source W2 to the data:", round(w2(source("gaussian", n=512, seed=2), data), 3))
print("noise floor (data vs data):", round(w2(target("moons", n=512, seed=3), data), 3))
for coupling in ("independent", "ot"):
    model = train("moons", "gaussian", coupling=coupling, iters=300, batch_size=256, seed=0)
    generated = sample(model, n=512, steps=2, solver="euler", seed=4)
    print(f"{coupling:12s} W2 after 2 Euler steps: {w2(generated, data):.3f}")

# %% [markdown]
# ## References
#
# - Y. Lipman, R. T. Q. Chen, H. Ben-Hamu, M. Nickel, M. Le. *Flow Matching for Generative Modeling.* ICLR 2023.
# - A. Tong, K. Fatras, N. Malkin, G. Huguet, Y. Zhang, J. Rector-Brooks, G. Wolf, Y. Bengio. *Improving and generalizing flow-based generative models with minibatch optimal transport.* TMLR 2024 (I-CFM, OT-CFM; the torchcfm library).
# - A.-A. Pooladian, H. Ben-Hamu, C. Domingo-Enrich, B. Amos, Y. Lipman, R. T. Q. Chen. *Multisample Flow Matching: Straightening Flows with Minibatch Couplings.* ICML 2023.
# - *Is There a Better Source Distribution than Gaussian? Exploring Source Distributions for Image Flow Matching.* 2025 (2D simulation, norm alignment, directional sources, pruned sampling).
# - J. Kim, J. Park, S. Jeon, S. Kim. *Better Source, Better Flow: Learning Condition-Dependent Source Distribution for Flow Matching.* arXiv:2602.05951, 2026 (variance regularisation, directional alignment).
# - X. Liu, C. Gong, Q. Liu. *Flow Straight and Fast: Learning to Generate and Transfer Data with Rectified Flow.* ICLR 2023 (straightness).
# - M. F. Naeem, S. J. Oh, Y. Uh, Y. Choi, J. Yoo. *Reliable Fidelity and Diversity Metrics for Generative Models.* ICML 2020 (coverage).
