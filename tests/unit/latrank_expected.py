# SPDX-License-Identifier: MIT
# The expected values of tests/unit/test_latrank.c, from
# scipy.stats.mannwhitneyu(alternative='greater', method='asymptotic',
# use_continuity=True).  Not run by the tests (their values are written in);
# to check them again: apt-get install python3-scipy, then
#   /usr/bin/python3 tests/unit/latrank_expected.py
import random
from scipy.stats import mannwhitneyu
def case(name, a, b):
    r = mannwhitneyu(a, b, alternative='greater', method='asymptotic', use_continuity=True)
    print(f"{name}: U={r.statistic!r} p={r.pvalue!r}")
case("disjoint", [1,2,3], [4,5,6])
case("reversed", [4,5,6], [1,2,3])
case("tie5", [5,6,7,8,9], [1,2,3,4,5])
random.seed(19)
a = [random.choice(range(8,16)) for _ in range(120)]
b = [random.choice(range(6,14)) for _ in range(90)]
from collections import Counter
print("many_ties a", sorted(Counter(a).items()))
print("many_ties b", sorted(Counter(b).items()))
case("many_ties", a, b)
case("ratio2", [10,12,14,15], [x*2 for x in [5,6,7]])
# Log buckets: samples at their bucket's middle (1000 us: 991.5; 2000 us: 1983.5).
case("log_ratio", [991.5]*50 + [1983.5]*50, [991.5*1.2]*100)
case("log_same", [991.5]*60 + [1983.5]*40, [991.5]*70 + [1983.5]*30)
