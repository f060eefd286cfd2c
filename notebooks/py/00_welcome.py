# %% [markdown]
# # Welcome to explorer
#
# **What does the choice of divergence — or of source distribution — do to the model you get?**
# Four explorers let you answer that by moving a slider, with the exact mathematics beside the trained result:
#
# | notebook | explorer | the question |
# |---|---|---|
# | `01_mode_seeking_vs_covering` | **modes** | Why does reverse KL pick one mode while forward KL covers them all? What do JS, Hellinger, χ², TV and the α family do in between? |
# | `02_reward_kl_frontiers` | **frontier** | How much reward does each alignment method buy per nat of KL, and when does the proxy reward betray you? |
# | `03_flow_matching_sources` | **flows** | Is there a better source than the standard Gaussian for flow matching? |
# | `04_reasoning_manifold` | **manifold** | Where, layer by layer, does a wrong chain of reasoning leave the manifold of correct ones? |
#
# **Learning goals of this notebook**
# 1. Read the one convention used everywhere: $D_f(P\|Q) = \mathbb{E}_Q[f(P/Q)]$, and "fit $q$ to $p$" means minimise $D(p\|q)$.
# 2. See that two numbers decide how a divergence behaves: $f(0)$ and $\lim_{t\to\infty} f(t)/t$.
# 3. See infinite divergences for what they are, and the noise of Monte-Carlo estimators against the exact value.
#
# **How to use this (two minutes):** change p, q and the divergence on the left. The table and the curve update in place; the status line under the title says what happened — including what was wrong if a setting is not allowed.

# %% [markdown] tags=["lab-only"]
# In JupyterLab, run the cell below first (Shift+Enter).

# %%
from explorer.welcome import CalculatorApp

app = CalculatorApp()
app

# %% [markdown]
# ## Reading the two numbers
#
# For a divergence $D_f(p\|q) = \sum_x q(x)\, f\big(p(x)/q(x)\big)$:
#
# * where **q has mass but p has none**, each unit of q costs $f(0)$. If $f(0) = \infty$ (reverse KL, Neyman χ², Jeffreys), q is *forbidden* to leave p's support: it would rather sit on one mode — **mode-seeking** (zero-forcing).
# * where **p has mass but q has none**, each unit of p costs $\lim f(t)/t$. If that is $\infty$ (forward KL, Pearson χ², Jeffreys), q *must* cover all of p — **mass-covering**.
# * Jeffreys has both: q may neither leave p's support nor miss any of it (the table says *zero-forcing and mass-covering*).
# * when both are finite (JS, squared Hellinger, TV, α in (0, 1)), the answer **depends on how far apart the modes are** — the modes explorer shows the switch.
#
# The curve $h(r) = f''(r)\, r^2$ (f-distill) tells where the gradient of the divergence looks: reverse KL weighs every ratio alike, forward KL weighs most where $p \gg q$ — the modes q misses.

# %% [markdown]
# ## What to try
#
# 1. Choose the preset *q outside p's support: reverse KL is infinite*. Which other divergences are infinite, and why exactly those?
# 2. With p = q = Gaussian, make q narrower (scale 0.5) and then wider (scale 2). Which of Pearson and Neyman explodes each time?
# 3. Switch to *discrete* and pick q = *no last tokens*. Then swap the roles: p = *no last tokens*, q = *teacher: two peaks*.
# 4. Set the samples to 10, then 10000, and compare k1, k2 and k3 with the exact reverse KL. Change the seed a few times.

# %% [markdown]
# <details><summary>Answers</summary>
#
# 1. Reverse KL, Neyman χ² and Jeffreys: all three have $f(0) = \infty$, and the Gaussian q puts mass outside $[-1.5, 1.5]$ where the uniform p has none. Forward KL, JS, Hellinger, Pearson, TV stay finite: for them $f(0)$ is finite.
# 2. Narrow q: Pearson $\int p^2/q$ diverges once $2\sigma_q^2 \le \sigma_p^2$ (q's tails are lighter than p's). Wide q: Neyman $\int q^2/p$ diverges once $2\sigma_p^2 \le \sigma_q^2$. For two Gaussians every value but Jensen-Shannon's is the closed form (the column beside it says so); close to the limits the values are huge but finite: at scale $10^{0.15}$ Neyman is 9.285, and exactly at the limit ($\sigma_q = 1/\sqrt2$ for Pearson) it is infinite. Other pairs are integrated over the whole line, and a diverging tail is detected from the tail formulas, not guessed from a grid.
# 3. With q missing tokens p uses, every mass-covering divergence (forward KL, Pearson, Jeffreys) is infinite. Swapped, q puts mass where p has none, so the zero-forcing ones (reverse KL, Neyman, Jeffreys) are infinite instead.
# 4. k1 is unbiased but noisy and can even go negative; k2 is biased (it targets a different quantity) but has low variance; k3 = k1 + (r − 1) is never negative and usually the least noisy, but it is unbiased **only when $\mathbb E_q[p/q] = 1$, i.e. when q covers p's support**: its mean is KL(q‖p) minus the mass of p where q is zero. In the preset *student misses teacher's tokens* that mass is 0.09, so k3 converges to 0.975 instead of the exact 1.065 (the table shows the bias). With 10 samples all three are far off; the standard error shrinks like $1/\sqrt{n}$ (an observation: try a few seeds).
# </details>

# %% [markdown] tags=["lab-only"]
# ## Under the hood
# The same numbers from the public API:

# %% tags=["lab-only"]
import numpy as np

from explorer import divergences

p = np.array([0.5, 0.5, 0.0])
q = np.array([0.25, 0.25, 0.5])
for name in divergences.names():
    alpha = 0.5 if name == "alpha" else None
    value = divergences.between(name, p, q, alpha=alpha)
    print(f"{name:11s} D(p||q) = {value:.4f}   ({divergences.get(name, alpha).behaviour})")

print("why infinite:", divergences.infinity_reason("reverse_kl", p, q))
print("alpha -> 1 equals forward KL:", divergences.between("alpha", q, [0.4, 0.4, 0.2], alpha=1.0),
      divergences.between("forward_kl", q, [0.4, 0.4, 0.2]))

# %% [markdown]
# ## References
# * T. Minka (2005). *Divergence measures and message passing.* — the zero-forcing / mass-covering view.
# * A. Cichocki, S. Amari (2010). *Families of alpha- beta- and gamma-divergences.* — the α family.
# * Y. Xu, W. Nie, A. Vahdat (2025). *One-step Diffusion Models with f-Divergence Distribution Matching* (f-distill) — the weight $h(r) = f''(r) r^2$.
# * J. Schulman (2020). *Approximating KL divergence.* — the k1, k2, k3 estimators.
# * S. Nowozin, B. Cseke, R. Tomioka (2016). *f-GAN* — conjugates $f^*$ and the variational view.
