# %% [markdown]
# # Reward–KL frontiers: what each alignment method buys per nat
#
# **The question.** How much reward does each alignment method buy per nat of KL from the reference
# model; when does optimising a *proxy* reward hurt the *true* one; what happens to diversity; and how
# close do trained policies get to the exact optimum?
#
# **Learning goals.** After this notebook you can
# 1. read the (KL, reward) plane and place KL-regularised RL, best-of-n, f-DPO optima, chi-PO and InfAlign on it, and compare them *at equal KL*, as the papers do;
# 2. explain why best-of-n's KL is *below* the familiar $\log n - \frac{n-1}{n}$ on a finite set;
# 3. see reward over-optimisation appear (and fit Gao et al.'s curves to it) when the proxy is wrong in its tail;
# 4. tell apart what a regulariser does to *coverage* (what π drops of π_ref) from what it does to *entropy*;
# 5. watch a trained tabular policy walk to the exact optimum for its β — and see why DPO on finite preference pairs walks past it;
# 6. see the memoryless-LM limit: best-of-N and KL-RL agree per token, not in absolute KL;
# 7. see why summing $\log\sigma$-transformed rewards acts as a logical AND.
#
# Everything is **exact** on a finite set of responses (float64, log space): no sampling except in the *Train* tab.
# Conventions: methods optimise the proxy; *gold* is the true reward. A regulariser named D is the registry's
# $D(\pi_\text{ref}\,\|\,\pi)$ — the policy is the fitted $q$ — so `reverse_kl` is $\mathrm{KL}(\pi\|\pi_\text{ref})$, the usual RL penalty.
# The registry's JS is half of Wang et al.'s generator, so β for `js` is their 2β; chi-PO's χ² is Huang et al.'s
# $\tfrac12 E_\text{ref}[(z-1)^2]$, $z = \pi/\pi_\text{ref}$, while *plain* χ² is $E_\text{ref}[(z-1)^2]$.
#
# **How to use.** Pick a preset (top), move β (the selected KL penalty) and n (best-of-n) in the *methods* tab, and
# switch the figure tabs. The × marks on the plane are the policies at the selected β and n; the table lists their
# measures. Their KLs differ, so rows at one β are not a fair comparison: switch *compare* to **at equal KL** and pick a
# KL budget, and every method's β (or n) is solved for that budget. InfAlign transforms the calibrated reward with
# $e^{t c}$; its t is chosen for the selected n (the n used at inference), or set by hand. *Train* runs a tabular policy
# in the background (progress bar, Cancel) and draws its path live.

# %%
from explorer.frontier import FrontierApp

app = FrontierApp()
app

# %% [markdown]
# ## What to try
#
# 1. **Default preset.** Compare the blue KL-RL curve and the red best-of-n points at the same KL, on *proxy* (switch y to proxy). Which is higher, and by how much? Then switch *compare* to *at equal KL*.
# 2. **Why is best-of-n's KL below $\log n - \frac{n-1}{n}$ here?** The hollow circles sit at that value; the filled points at the exact KL. Look at large n.
# 3. **Preset *reward hacking*.** Open the *Goodhart* tab (overoptimisation). At which n does best-of-n stop improving gold reward? At which β does KL-RL? Why does KL-RL peak so much earlier? How well do Gao et al.'s fitted curves place the peaks?
# 4. **Preset *plain χ² (neyman here) makes zeros*.** Read the table row of the f-DPO optimum. Why is KL(π_ref‖π) infinite while KL(π‖π_ref) is finite?
# 5. **Preset *verifiable answers*.** Open *diversity*. Do the optima cover different numbers of distinct correct answers in 8 samples? Now set the proxy–gold correlation to 1 and compare *at equal KL*. What is left of the difference?
# 6. **Train.** With the default preset press *Train* (policy gradient + KL, β = 0.3), then switch *method* to the DPO family with *DPO divergence* reverse KL and train again; then with 3000 steps. Where do the paths end?
# 7. **Memoryless LM.** Move Δ. What happens to KL(best-of-N‖RL) and to KL(best-of-N‖RL)/L as L grows?
# 8. **Two rewards.** Open *two rewards*: KL-RL on $r_1 + r_2$ against KL-RL on $\log\sigma(r_1 - \text{ref}_1) + \log\sigma(r_2 - \text{ref}_2)$. Which one gets both rewards above a typical reference response more often at the same KL, and why?
# 9. **Preset *equal KL: every method at 1 nat*.** Which method wins best-of-16 against best-of-16 from π_ref most often, and which has the most gold reward? Move n and watch InfAlign's t.

# %% [markdown]
# <details><summary>Answer</summary>
#
# 1. KL-RL is higher on proxy at every KL: the tilted policy $\pi_\beta \propto \pi_\text{ref} e^{r/\beta}$ *maximises* $E_\pi[r] - \beta\,\mathrm{KL}$, so no policy beats it on proxy at its own KL. Best-of-n is close: between 1 and 6.5 nats it is 0.06–0.17 below (Beirami et al.; Gui et al.). *At equal KL* = 1 the table shows it in one row each: KL-RL 1.111 on proxy, best-of-n (n = 6.392) 0.9493. On gold the gap is similar here (0.8677 against 0.706), because gold and proxy are jointly Gaussian.
# 2. $\log n - \frac{n-1}{n}$ is the KL of best-of-n for a *continuous* reward. On a finite set the best response has a fixed probability under π_ref, and best-of-n's KL can never exceed $-\log \pi_\text{ref}(\text{best})$ (7.893 nats here): the exact points bend away for large n (7.242 nats instead of 7.318 at n = 4096). Ties (the three hackable responses share one proxy value; the verifiable preset has only a few reward levels) lower it further: within a level best-of-n keeps π_ref's proportions.
# 3. Best-of-n's measured gold peak (the star) is at n = 718 (√KL = 2.35); KL-RL's at β = 0.881 (√KL = 0.921). The hackable responses are the *rarest* under π_ref: best-of-n only finds them when n is comparable to 1/π_ref(hack), but the exponential tilt $e^{r/\beta}$ pours mass onto them as soon as their proxy dominates. The dashed curves are Gao et al.'s forms $d(a - b\log d)$ and $d(a - b d)$ fitted up to a little past the peak. They follow the rise (R² = 0.96 for KL-RL, 0.83 for best-of-n) but misplace the peak: their own maxima lie at d = 1.64 and 3.14, the second beyond the data. Gao et al. fitted these forms to learned reward models, not to a few planted hacks. On the default preset best-of-n's gold is still rising at n = 4096: no star there, and its fit has no maximum.
# 4. Plain χ²(π‖π_ref) $= E_\text{ref}[(\pi/\pi_\text{ref} - 1)^2]$ has a finite slope at zero ($g'(0) = -2$), so its optimum $\pi = \pi_\text{ref}\max(0, 1 + (r-\lambda)/2\beta)$ sets responses with low reward to *exactly* zero. KL(π‖π_ref) only sums where π > 0 (finite); KL(π_ref‖π) pays $\log(\pi_\text{ref}/0) = \infty$ for every response π_ref can produce but π never does. chi-PO adds KL to its ½χ², which keeps full support (its link $z + \log z$ reaches $-\infty$). Every other optimum here has full support too, even where its probabilities underflow (JS at β = 0.01 on the *heavy-tailed* preset puts some below $10^{-308}$): optima and KLs are computed in log space, so the table shows their KL(π_ref‖π) as a finite number, not as ∞.
# 5. With the proxy (correlation 0.9) the optima do differ in coverage, even at equal KL = 1 (KL-RL 2.287 distinct correct answers in 8 samples, JS 2.251, best-of-n 0.6308), but only because of the proxy's noise *among the correct answers*: each method spreads its extra mass differently over correct answers whose proxy rewards differ. With correlation 1 the reward is binary, and every f-regularised optimum, and best-of-n too, is $\pi_\text{ref} \times (a \text{ on correct answers}, b \text{ elsewhere})$: at equal KL = 1 all five rows cover the same 2.275 distinct correct answers in 8 samples and drop the same KL(π_ref‖π) = 0.4231. So an exact single-prompt optimum cannot say which divergence keeps more diversity. DPH-RL's claim (Li et al. 2025: mass-covering divergences preserve diversity in RL with verifiable rewards) is about *training dynamics* — parameters shared across prompts, correct answers that are never sampled, training without a KL term — which this toy leaves out.
# 6. Policy gradient with the KL penalty (β = 0.3, 300 steps) ends near the tilted optimum (the × on the blue curve): KL 3.895 against the optimum's 3.925. DPO does not: it sees 20,000 preference pairs, not the reward, and 316 of the 1,886 responses that appear in a pair never lose one. Pushing such a response up only lowers the pair loss, so the loss has no minimiser (Azar et al. 2023), and training does not settle: reverse-KL DPO at β = 0.3 is at KL 3.883 after 300 steps and 9.195 after 3000, *further* from its population optimum (the tilted policy, KL 3.925), not closer. Forward-KL DPO's proxy reward falls from 0.8172 to 0.6037 between 300 and 3000 steps, while its population optimum has 2.807. The ◇ on the plane marks each run's population optimum; the status line says what the pairs leave undetermined. With 100 responses (*scenario* tab) every response is compared and none is unbeaten: then the pairs fix a Bradley–Terry reward (its maximum-likelihood fit), and DPO's actual target is the optimum for that *fitted* reward (□): reverse-KL DPO reaches it in 3000 steps (KL between them below $10^{-6}$) and stays 0.456 nats from the population optimum.
# 7. KL(best-of-N‖RL) *grows* with L, like ½ log L: from L = 128 to 256 (Δ = 0.3) it rises by 0.331, close to ½ log 2 = 0.347. Divided by L it vanishes, and the per-token rewards converge (Yang et al., *Asymptotics of LM alignment*): best-of-N and KL-RL are the same *per token*, not in absolute terms.
# 8. The transformed sum: at 2 nats it puts about 83% of its mass where both rewards beat their π_ref median, the plain sum about 49%. The second reward is wider, so the plain sum buys most of its gain there and neglects $r_1$; $\log\sigma$ saturates once a reward is comfortably good, so further gain only comes from the weaker one — the sum of log-probabilities of "good" is the log-probability that *both* are good (Wang et al. 2024).
# 9. At KL = 1 InfAlign (t = 191, chosen for n = 16) wins best-of-16 against best-of-16 from π_ref 99.17% of the time (on the proxy), KL-RL 96.98%, best-of-n itself (n = 6.392) 86.44%. KL-RL has the most proxy (1.111) and gold (0.8677); InfAlign only 0.597 gold: it buys inference-time win rate with mean reward, which is what its calibrate-and-transform is for (Balashankar et al. 2025). The calibrated reward is uniform under π_ref whatever the reward model, so t is chosen once for each n on that problem: the t whose policy at KL = 1 wins best-of-n most often. It grows with n (5.7 for n = 2, 17 for n = 4 at 1 nat); untick *InfAlign t: chosen for n* to move it by hand.
# </details>

# %% [markdown] tags=["lab-only"]
# ## Under the hood
#
# The same objects from the public API, on a small set you can check by hand:

# %% tags=["lab-only"]
import numpy as np

from explorer.frontier import (
    best_of_n,
    bon_frontier,
    f_regularized,
    kl,
    kl_frontier,
    tilted,
    win_rate,
)

pi_ref = [0.4, 0.3, 0.2, 0.1]
reward = [0.0, 1.0, 2.0, 2.0]          # two responses tie at the top

pi_rl = tilted(pi_ref, reward, beta=0.5)
pi_bon = best_of_n(pi_ref, reward, n=4)
print("KL-RL  ", pi_rl.round(4), " KL =", round(kl(pi_rl, pi_ref), 4), " win rate =", round(win_rate(pi_rl, pi_ref, reward), 4))
print("best-of-4", pi_bon.round(4), " KL =", round(kl(pi_bon, pi_ref), 4), " < log 4 - 3/4 =", round(np.log(4) - 0.75, 4))

# f-regularised optima at beta = 0.2; neyman here is the plain chi^2(pi||pi_ref): it makes zeros
for name in ["reverse_kl", "forward_kl", "js", "neyman", "chi_po"]:
    pi = f_regularized(pi_ref, reward, 0.2, name)
    print(f"{name:10s}", pi.round(4), " KL(pi_ref||pi) =", kl(pi_ref, pi))

kls, rewards = kl_frontier(pi_ref, reward, [0.1, 1.0, 10.0])
print("KL-RL frontier:", kls.round(4), rewards.round(4))
kls, rewards = bon_frontier(pi_ref, reward, [1, 2, 8, 64])
print("best-of-n frontier:", kls.round(4), rewards.round(4))

# %% tags=["lab-only"]
# The app is headless too: set(), read the result, look at a figure
app.set(n_hackable=3, x_axis="sqrt_kl")
bon = app.result.curves["bon"]
print("best-of-n gold peaks at n =", bon.values[app.result.peaks["bon"]])
app.set(compare="equal_kl", kl_budget=2.0)    # every method at KL = 2 nats
for name, row in app.result.selected.items():
    print(f"{name:45s} {row.setting:32s} gold {row.gold:.4f}")
app.set(compare="parameter", kl_budget=1.0)
# a figure shown as explorer's widget uses the plotly JavaScript the page already has (a plain
# plotly figure would load and run a second copy, about 5 MB)
from explorer.ui import FigureWidget

FigureWidget(app.figures["overoptimisation"])

# %% [markdown]
# ## References
# * T. Korbak, E. Perez, C. Buckley (2022). *RL with KL penalties is better viewed as Bayesian inference.* — the tilted optimum $\pi_\beta \propto \pi_\text{ref} e^{r/\beta}$.
# * A. Beirami et al. (2024). *Theoretical guarantees on the best-of-n alignment policy.* — exact best-of-n KL, and $\log n - \frac{n-1}{n}$ as an upper bound.
# * L. Gui, C. Gârbacea, V. Veitch (2024). *BoNBoN alignment for large language models and the sweetness of best-of-n sampling.* — best-of-n is nearly the optimal reward–KL trade-off.
# * J. Q. Yang, S. Salamatian, Z. Sun, A. T. Suresh, A. Beirami (2024). *Asymptotics of language model alignment.* — best-of-N vs KL-RL per token.
# * C. Wang et al. (2024). *Beyond reverse KL: generalizing direct preference optimization with diverse divergence constraints* (f-DPO).
# * A. Huang et al. (2025). *Correcting the mythos of KL-regularization: direct alignment without overoptimization via χ²-preference optimization* (chi-PO).
# * A. Balashankar et al. (2025). *InfAlign: inference-aware language model alignment.* — calibrate-and-transform.
# * Z. Wang et al. (2024). *Transforming and combining rewards for aligning large language models.* — $\log\sigma(r - r_\text{ref})$ and the logical AND.
# * L. Gao, J. Schulman, J. Hilton (2023). *Scaling laws for reward model overoptimization.*
# * L. Li et al. (2025). *The choice of divergence: a neglected key to mitigating diversity collapse in reinforcement learning with verifiable reward* (DPH-RL) — mass-covering divergences as a "rehearsal" of π_ref.
# * B. Li, M. Xu, J. Han, M. Dang, S. Ermon (2025). *Divergence minimization preference optimization for diffusion model alignment* (DMPO) — the other side of the argument: it minimises *reverse* KL to escape the mean-seeking of DPO-style objectives.
# * M. G. Azar et al. (2023). *A general theoretical paradigm to understand learning from human preferences.* — why DPO on finite, deterministic-looking preferences drifts away from its regularised optimum.
# * G. Kruszewski, P. Erbacher, J. Rozen, M. Dymetman (2026). *Whatever remains must be true: filtering drives reasoning in LLMs, shaping diversity* — RL with a KL penalty as reverse-KL distribution matching.
# * R. Rafailov et al. (2023). *Direct preference optimization.* — the DPO loss the f-DPO family generalises.
