# %% [markdown]
# # Mode-seeking vs mass-covering: what the divergence does to the fit
#
# Fit a simple model $q$ to a target $p$ with several modes by minimising $D_f(p\|q) = \mathbb E_q\big[f(p/q)\big]$.
# Reverse KL locks onto one mode; forward KL smears over all of them. Every other f-divergence sits somewhere in between,
# and *where* depends on two numbers and on how far apart the modes are.
#
# **Learning goals.** After this notebook you can
# 1. predict from $f(0)$ and $\lim_{t\to\infty} f(t)/t$ whether a divergence seeks a mode or covers the mass;
# 2. read the gradient weight $h(r) = f''(r)\,r^2$ (the *f-distill* view) to see which regions pull on $q$;
# 3. find the separation at which Jensen-Shannon, Hellinger and the α family switch from covering to choosing;
# 4. see why a first-order optimiser can stop in a local optimum, and why a mixture model stops mode-seeking;
# 5. tell the exact value of a divergence from a Monte-Carlo estimate, and know when the estimate cannot be trusted.
#
# **How to use.** Pick a divergence (top left), a target and a model; every figure updates. *preset* loads a ready-made
# setting. Solver *animated (Adam)* records a whole optimisation path: press ▶ to play it. Hover on the plots for values.

# %%
from explorer.modes import ModesApp

app = ModesApp()
app

# %% [markdown]
# ## Reading the figures
#
# * **p and q** — the target (grey) and the fitted $q$ (blue); *compare with* overlays a second divergence's fit (orange).
# * **why** — $h(r(x))$ with $r = p/q$: large $h$ where $r \gg 1$ (mass of $p$ that $q$ misses) pulls $q$ to cover;
#   large $h$ where $r \ll 1$ (mass of $q$ where $p$ has little) pushes $q$ off empty regions. The line above the plot
#   gives $f(0)$ (price per unit of $q$ where $p$ is empty) and $\lim f(t)/t$ (price per unit of $p$ that $q$ misses).
# * **landscape** — the objective over (mean, log std) of a single Gaussian, with the local optima (✕), the global one (★)
#   and the solver's path; the colour is $\log_{10}(D - \min D + 10^{-3})$. Blank rows are values of the std where the
#   divergence is *infinite* (the reason is printed).
# * **mode coverage** — mass of $p$ and of $q$ near each mode of $p$.
# * **table** — the fitted $q$ scored under every divergence (∞ with its reason), entropies, Monte-Carlo estimates.
# * **sweep** — the fitted mean and std as α, or the separation of the modes, runs over a range.

# %% [markdown]
# ## What to try
#
# 1. Default view: reverse KL on two modes at ±2. Set *compare with* to forward KL. Why does each one land where it does?
#    Read the two numbers under the picker.

# %% [markdown]
# <details><summary>Answer</summary>
#
# Reverse KL has $f(0) = -\log 0 = \infty$: every bit of $q$'s mass where $p$ is (nearly) empty costs without bound, so
# $q$ shrinks onto one mode (mean ≈ ±2, std ≈ 0.5) and ignores the other — $\lim f(t)/t = 0$ means missing $p$'s
# mass costs almost nothing. Forward KL is the mirror image: $f(0) = 0$ but $f(t)/t = \log t \to \infty$, so missing
# any of $p$ is forbidden; the best single Gaussian is moment matching, mean 0 and std $\sqrt{0.5^2 + 2^2} \approx 2.06$.
# </details>

# %% [markdown]
# 2. Choose the preset *JS: cover or pick, by separation*. Find the separation where Jensen-Shannon switches from covering
#    both modes to picking one. Then do the same for squared Hellinger and total variation.

# %% [markdown]
# <details><summary>Answer</summary>
#
# With component std 0.5 the JS fit switches at a separation of **4.245** (modes at ±2.12); squared Hellinger at
# **4.741**, total variation already at **3.687** (each to ±0.0005). These divergences have *both* numbers finite ($f(0)$ and
# $\lim f(t)/t$ are $\tfrac12\log 2$ for JS, 1 for Hellinger, ½ for TV), so neither kind of mistake is forbidden: for close
# modes covering is cheaper, for distant modes the cost of the empty middle wins. The sweep shows a jump, not a smooth
# change: two local optima exchange places as the global one (open the landscape near the switch to see both).
# </details>

# %% [markdown]
# 3. Choose the preset *alpha sweep*. Where along α does the fit jump? Check α = 0 and α = 1 against reverse and forward KL.

# %% [markdown]
# <details><summary>Answer</summary>
#
# For modes at ±2 the jump is at α = 0.409 (the sweep's steps of 0.1 show it between 0.4 and 0.5). For α ≤ 0, $f_\alpha(0) = \infty$: zero-forcing like reverse
# KL (α → 0 *is* reverse KL). For α ≥ 1 the slope at infinity is infinite: covering like forward KL (α → 1 *is* forward KL);
# beyond 1 the std grows past moment matching (α = 2 is Pearson χ²/2, which punishes thin tails of $q$ even more). The
# limits are evaluated exactly (no division by zero), so α = 0 and α = 1 give the KL fits to many digits.
# </details>

# %% [markdown]
# 4. Choose *Adam from the middle: stuck* and press ▶. Then *Adam off-centre: finds a mode*. Why does the first one stop?

# %% [markdown]
# <details><summary>Answer</summary>
#
# Started just off the middle (mean 0.1, std 1), Adam is pulled almost equally both ways and settles on the symmetric
# solution (mean 0, std ≈ 1.74), a *local* optimum of reverse KL with value 1.87 against 0.693 at either mode: the landscape shows three basins
# (✕ ✕ ★). The exact solver avoids it by starting from several points (moment matching and every mode of $p$) and
# reporting all the optima it finds. Gradient descent only sees the basin it starts in.
# </details>

# %% [markdown]
# 5. Choose *a mixture stops mode-seeking* (three modes at separation 8, K = 3, reverse KL). Then set K = 2 and K = 1.
#    Why does a mixture $q$ stop mode-seeking? Finally set the separation back to 4.

# %% [markdown]
# <details><summary>Answer</summary>
#
# Reverse KL never *wants* to drop a mode: it is forced to by $f(0) = \infty$ when a single bump cannot reach two modes
# without putting mass in the empty valley between them. With K = 3 components $q$ can put one bump on each mode and no
# mass in the valleys, so it recovers $p$ exactly (D = 0) under every divergence. With K = 2 it covers two modes (the
# middle one and one outer one, weights 2/3 and 1/3, D = 0.288) and drops the third (0.000 of $q$'s mass there); with K = 1
# it sits on the middle mode (0.96 of its mass there, D = 0.693). At separation 4 the valleys are too shallow to be
# worth a dropped mode: K = 1 covers all three (std 1.32; $q$'s mass near the modes 0.22, 0.54, 0.22) and K = 2 keeps
# mass on every mode too. Mode-seeking is a symptom of too little capacity *and* enough separation, not a property of the
# divergence alone.
# </details>

# %% [markdown]
# 6. Choose *Monte-Carlo: k1 vs k3* and vary the batch size, seed and estimator. Then pick the α family with α = −0.5
#    and evaluation Monte-Carlo, estimator *f*. Compare the estimate with the exact value.

# %% [markdown]
# <details><summary>Answer</summary>
#
# At this preset $q$ sits on one mode. k1 (= −log r) is unbiased: 0.6932 ± 0.0001 from 256 samples, against the exact 0.6931.
# k3 (= (r − 1) − log r) is never negative and is unbiased **only when $\mathbb E_q[p/q] = 1$**, i.e. when $q$'s samples reach
# all of $p$; here they never visit the other mode, half of $p$'s mass, so the mean of r over the samples is about 0.5 and
# k3 gives 0.193 ± 0.00003: off by about 0.5 with a tiny error bar (in notebook 00, where $q$ is exactly zero on some
# tokens, the same bias is exact: minus the mass of $p$ that $q$ misses). k2 (= ½(log r)²) is biased: 0.240. With α = −0.5 and $q$ on one mode the estimate is about 0.22 with
# a tiny error bar while the exact value is about 0.55: the samples come from $q$, which never visits the other mode,
# so the estimator cannot see the mass $q$ misses (about 60 % of the value). A small standard error is no guarantee.
# </details>

# %% [markdown]
# 7. Choose *distillation: student over tokens*, then *teacher with hard zeros*. Which divergences become infinite, and why?

# %% [markdown]
# <details><summary>Answer</summary>
#
# A softmax student gives every token some probability. When the teacher gives some tokens *exactly* zero, every
# divergence with $f(0) = \infty$ (reverse KL, Neyman χ², Jeffreys, α ≤ 0) is infinite for *every* student: there is
# no fit to find. Forward KL is still fine. This is why distillation recipes that use reverse KL *smooth* the teacher (mix
# in a little probability everywhere); truncating it (top-k, top-p) would create exactly the zeros that make reverse KL
# infinite.
# </details>

# %% [markdown]
# 8. Choose *2D ring of 8* (a Gaussian with full covariance against eight modes on a circle). What does reverse KL
#    do with the extra freedom of a covariance, and what does forward KL do?

# %% [markdown]
# <details><summary>Answer</summary>
#
# Forward KL matches the first two moments: a round Gaussian centred in the middle of the ring, with most of its mass
# in the empty centre. Reverse KL cannot leave the modes either, but a covariance lets it stretch along the ring: it
# sits just inside one mode and stretches tangentially, along the ring, so that about 0.4 of its mass lies on that mode
# and about 0.2 on each of its two neighbours (see the coverage bars). The ring's symmetry makes eight copies of this
# optimum; the solver finds several of them as separate local optima with the same value.
# </details>

# %% [markdown] tags=["lab-only"]
# ## Under the hood
#
# The app is a thin layer over a small public API: a target, a fit, and the measures of the fit.

# %% tags=["lab-only"]
import numpy as np

from explorer import modes

p = modes.mixture(means=[-2.0, 2.0], stds=[0.5, 0.5], weights=[0.5, 0.5])
for name in ["forward_kl", "reverse_kl", "js", "hellinger"]:
    q = modes.fit(p, divergence=name)
    others = ", ".join(f"{o.model.means[0]:+.2f}" for o in q.local_optima)
    print(f"{name:11s} mean {q.mean:+.3f}  std {q.std:.3f}  D = {q.value:.4f}   other optima at: {others}")

three = modes.preset_1d("three modes", separation=8.0)
q = modes.fit(three, family="mixture", components=3, divergence="reverse_kl")
print("K = 3 on three modes:", np.round(q.means, 3), np.round(q.stds, 3), np.round(q.weights, 3))

sweep = modes.separation_sweep("js", separations=np.arange(3.0, 6.01, 0.5))
print("JS |mean| by separation:", ", ".join(f"{d:.1f}: {abs(m):.2f}" for d, m in zip(sweep.values, sweep.means)))

estimate, error = modes.monte_carlo_value(p, modes.fit(p, divergence="forward_kl").model,
                                          "reverse_kl", batch_size=4096, seed=0, estimator="k3")
print(f"KL(q||p) by k3 from 4096 samples: {estimate:.4f} ± {error:.4f}")

# %% [markdown]
# ## References
#
# * T. Minka (2005). *Divergence measures and message passing.* Microsoft Research technical report — $f(0)$, zero-forcing and inclusive divergences.
# * A. Cichocki, S. Amari (2010). *Families of alpha- beta- and gamma-divergences.* Entropy 12 — the α family and its KL limits.
# * Y. Xu, W. Nie, A. Vahdat (2025). *One-step Diffusion Models with f-Divergence Distribution Matching* (**f-distill**) — the weight $h(r) = f''(r) r^2$.
# * D. Go et al. (2023). *Aligning language models with preferences through f-divergence minimization* (**f-DPG**), ICML.
# * *Sinkhorn distance minimization for knowledge distillation* (**SinKD**, 2024) — why KL, reverse KL and JS each fail a student.
# * *BD-KD: balancing the divergences for online knowledge distillation* (**BD-KD**) — mixing forward and reverse KL by the teacher's confidence.
# * *The choice of divergence: a neglected key to mitigating diversity collapse in RL with verifiable reward* (**DPH-RL**, 2025) — mass-covering divergences keep pass@k.
# * J. Schulman (2020). *Approximating KL divergence* (blog) — the k1, k2, k3 estimators.
# * D. Kingma, J. Ba (2015). *Adam: a method for stochastic optimization*, ICLR; J. Nocedal, S. Wright (2006), *Numerical optimization*, ch. 6 (BFGS).
