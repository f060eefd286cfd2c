"""Write notebooks/02_reward_kl_frontiers.ipynb (without outputs). Run from the repository root."""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = [
    new_markdown_cell(r"""# Reward–KL frontiers: what each alignment method buys per nat

**The question.** How much reward does each alignment method buy per nat of KL from the reference
model; when does optimising a *proxy* reward hurt the *true* one; what happens to diversity; and how
close do trained policies get to the exact optimum?

**Learning goals.** After this notebook you can
1. read the (KL, reward) plane and place KL-regularised RL, best-of-n, f-DPO optima, chi-PO and InfAlign on it;
2. explain why best-of-n's KL is *below* the familiar $\log n - \frac{n-1}{n}$ on a finite set;
3. see reward over-optimisation appear (and fit Gao et al.'s curves to it) when the proxy is wrong in its tail;
4. tell apart what a regulariser does to *coverage* (what π drops of π_ref) from what it does to *entropy*;
5. watch a trained tabular policy walk to the exact optimum for its β;
6. see the memoryless-LM limit: best-of-N and KL-RL agree per token, not in absolute KL;
7. see why summing $\log\sigma$-transformed rewards acts as a logical AND.

Everything is **exact** on a finite set of responses (float64, log space): no sampling except in the *Train* tab.
Conventions: methods optimise the proxy; *gold* is the true reward. A regulariser named D is the registry's
$D(\pi_\text{ref}\,\|\,\pi)$ — the policy is the fitted $q$ — so `reverse_kl` is $\mathrm{KL}(\pi\|\pi_\text{ref})$, the usual RL penalty.

**How to use.** Pick a preset (top), move β (the selected KL penalty) and n (best-of-n) in the *methods* tab, and
switch the figure tabs. The × marks on the plane are the policies at the selected β and n; the table lists their
measures. *Train* runs a tabular policy in the background (progress bar, Cancel) and draws its path live."""),
    new_code_cell("""from explorer.frontier import FrontierApp

app = FrontierApp()
app"""),
    new_markdown_cell(r"""## What to try

1. **Default preset.** Compare the blue KL-RL curve and the red best-of-n points at the same KL, on *proxy* (switch y to proxy). Which is higher, and by how much?
2. **Why is best-of-n's KL below $\log n - \frac{n-1}{n}$ here?** The hollow circles sit at that value; the filled points at the exact KL. Look at large n.
3. **Preset *reward hacking*.** Open *overoptimisation*. At which n does best-of-n stop improving gold reward? At which β does KL-RL? Why does KL-RL peak so much earlier?
4. **Preset *plain χ² (neyman here) makes zeros*.** Read the table row of the f-DPO optimum. Why is KL(π_ref‖π) infinite while KL(π‖π_ref) is finite?
5. **Preset *verifiable answers*.** Open *diversity*. At equal KL(π‖π_ref), which optimum covers more distinct correct answers in 8 samples: KL-RL or JS / forward KL? And which one *drops* less of π_ref?
6. **Train.** With the default preset press *Train* (policy gradient + KL, β = 0.3), then switch *method* to the DPO family with `forward_kl` and train again. Where do the paths end?
7. **Memoryless LM.** Move Δ. What happens to KL(best-of-N‖RL) and to KL(best-of-N‖RL)/L as L grows?
8. **Two rewards.** Open *two rewards*: KL-RL on $r_1 + r_2$ against KL-RL on $\log\sigma(r_1 - \text{ref}_1) + \log\sigma(r_2 - \text{ref}_2)$. Which one gets both rewards above a typical reference response more often at the same KL, and why?"""),
    new_markdown_cell(r"""<details><summary>Answer</summary>

1. KL-RL is higher on proxy at every KL: the tilted policy $\pi_\beta \propto \pi_\text{ref} e^{r/\beta}$ *maximises* $E_\pi[r] - \beta\,\mathrm{KL}$, so no policy beats it on proxy at its own KL. Best-of-n is close (0.05–0.15 below between 1 and 6.5 nats here): it is nearly KL-optimal (Beirami et al.; Gui et al.). On gold the gap is similar because gold and proxy are jointly Gaussian here.
2. $\log n - \frac{n-1}{n}$ is the KL of best-of-n for a *continuous* reward. On a finite set the best response has a fixed probability under π_ref, and best-of-n's KL can never exceed $-\log \pi_\text{ref}(\text{best})$: the exact points bend away for large n (7.24 nats instead of 7.32 at n = 4096 here). Ties (the three hackable responses share one proxy value; the verifiable preset has only a few reward levels) lower it further: within a level best-of-n keeps π_ref's proportions.
3. Best-of-n's gold peaks around n ≈ 700 (√KL ≈ 2.4); KL-RL's around β ≈ 0.9 (√KL ≈ 0.9). The hackable responses are the *rarest* under π_ref: best-of-n only finds them when n is comparable to 1/π_ref(hack), but the exponential tilt $e^{r/\beta}$ pours mass onto them as soon as their proxy dominates. The dashed curves are Gao et al.'s forms $d(a - b d)$ and $d(a - b\log d)$ fitted up to a little past the peak.
4. Plain χ²(π‖π_ref) $= E_\text{ref}[(\pi/\pi_\text{ref} - 1)^2]$ has $f'(0) = -2$ finite, so its optimum $\pi = \pi_\text{ref}\max(0, 1 + (r-\lambda)/2\beta)$ sets responses with low reward to *exactly* zero. KL(π‖π_ref) only sums where π > 0 (finite); KL(π_ref‖π) pays $\log(\pi_\text{ref}/0) = \infty$ for every response π_ref can produce but π never does. chi-PO adds KL to the χ², which keeps full support (its link $z + \log z$ reaches $-\infty$).
5. In the exact optima KL-RL covers *more* distinct correct answers at equal KL(π‖π_ref): forward KL's optimum $\pi \propto \pi_\text{ref}\,\beta/(\lambda - r)$ piles its extra mass onto the single top-proxy response and keeps a π_ref-shaped floor on everything else, while the exponential tilt spreads over all high-proxy (mostly correct) answers. What forward KL / JS buy is the middle panel: they drop far less of π_ref (KL(π_ref‖π) stays small; JS only until β is very small — JS is bounded by log 2, so a tiny β lets the reward win everywhere, as the table at β = 0.1 shows) — the "rehearsal" of the reference's skills that DPH-RL argues for. A trained tabular policy (*Train*) ends near the exact optimum here too, without collapsing: the collapse reported for RL on language models needs what this toy leaves out (parameters shared across prompts, rare correct answers that are never sampled, training without any KL term).
6. Policy gradient with the KL penalty walks towards the tilted policy for β = 0.3 (the × on the blue curve); DPO with `forward_kl` walks towards the f-DPO optimum for its β (the × on the green curve). With more steps (and, for DPO, more preference pairs) the endpoints meet the exact optima; the tests check this on small sets.
7. KL(best-of-N‖RL) *grows* with L (like log L), but divided by L it vanishes, and the per-token rewards converge (Yang et al., *Asymptotics of LM alignment*): best-of-N and KL-RL are the same *per token*, not in absolute terms.
8. The transformed sum: at 2 nats it puts about 83% of its mass where both rewards beat their π_ref median, the plain sum about 49%. The second reward is wider, so the plain sum buys most of its gain there and neglects $r_1$; $\log\sigma$ saturates once a reward is comfortably good, so further gain only comes from the weaker one — the sum of log-probabilities of "good" is the log-probability that *both* are good (Wang et al. 2024).
</details>"""),
    new_markdown_cell("""## Under the hood

The same objects from the public API, on a small set you can check by hand:"""),
    new_code_cell("""import numpy as np
from explorer.frontier import best_of_n, bon_frontier, f_regularized, kl, kl_frontier, tilted, win_rate

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
print("best-of-n frontier:", kls.round(4), rewards.round(4))"""),
    new_code_cell("""# The app is headless too: set(), read the result, look at a figure
app.set(n_hackable=3, x_axis="sqrt_kl")
peak = app.result.curves["bon"]
print("best-of-n gold peaks at n =", peak.values[np.argmax(peak.gold)])
app.figures["overoptimisation"]"""),
    new_markdown_cell(r"""## References
* T. Korbak, E. Perez, C. Buckley (2022). *RL with KL penalties is better viewed as Bayesian inference.* — the tilted optimum $\pi_\beta \propto \pi_\text{ref} e^{r/\beta}$.
* A. Beirami et al. (2024). *Theoretical guarantees on the best-of-n alignment policy.* — exact best-of-n KL, and $\log n - \frac{n-1}{n}$ as an upper bound.
* L. Gui, C. Gârbacea, V. Veitch (2024). *BoNBoN alignment for large language models and the sweetness of best-of-n sampling.* — best-of-n is nearly the optimal reward–KL trade-off.
* J. Q. Yang, S. Salamatian, Z. Sun, A. T. Suresh, A. Beirami (2024). *Asymptotics of language model alignment.* — best-of-N vs KL-RL per token.
* C. Wang et al. (2024). *Beyond reverse KL: generalizing direct preference optimization with diverse divergence constraints* (f-DPO).
* A. Huang et al. (2025). *Correcting the mythos of KL-regularization: direct alignment without overoptimization via χ²-preference optimization* (chi-PO).
* A. Balashankar et al. (2025). *InfAlign: inference-aware language model alignment.* — calibrate-and-transform.
* Z. Wang et al. (2024). *Transforming and combining rewards for aligning large language models.* — $\log\sigma(r - r_\text{ref})$ and the logical AND.
* L. Gao, J. Schulman, J. Hilton (2023). *Scaling laws for reward model overoptimization.*
* L. Li et al. (2025). *The choice of divergence: a neglected key to mitigating diversity collapse in reinforcement learning with verifiable reward* (DPH-RL) — mass-covering divergences as a "rehearsal" of π_ref.
* DMPO — preference optimisation by divergence minimisation, the same coverage argument on the preference side.
* G. Kruszewski, P. Erbacher, J. Rozen, M. Dymetman (2026). *Whatever remains must be true: filtering drives reasoning in LLMs, shaping diversity* — RL with a KL penalty as reverse-KL distribution matching.
* R. Rafailov et al. (2023). *Direct preference optimization.* — the DPO loss the f-DPO family generalises."""),
]

notebook = new_notebook(cells=cells, metadata={
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
})
Path("notebooks/02_reward_kl_frontiers.ipynb").write_text(nbformat.writes(notebook))
