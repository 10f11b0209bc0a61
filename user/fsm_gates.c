/* SPDX-License-Identifier: MIT */
/*
 * Latency gates, and the HTTP gates judged in their window
 * (min-success-rate, max-error-ratio), of a canary or rolling rollout (part
 * of the pure state machine: no I/O, no clock).  A rolling rollout's "step"
 * is a batch: its weight is applied when its new instances serve, the hold
 * is before the next batch (fsm_rollhold.c), and only a window that began
 * after that weight can pass it (an earlier one still counts when bad).
 *  Every health-interval the agent reports the new version's
 * response time and accept wait over its gate window (FE_LAT_SAMPLE), and,
 * with max-p99-ratio, the same window of the version it is compared with
 * (its fresh baseline, else the active version): the window closes with a
 * verdict once each side holds min-samples responses, else it stays open
 * and the sample is inconclusive.
 *
 *  - a conclusive sample over max-p99 or max-accept-wait-p99, or one whose
 *    response times the rank test (latrank.c) finds slower than
 *    max-p99-ratio times the comparison's at the configured confidence,
 *    health-threshold times in a row, rolls back;
 *  - a step whose bake is over (the next rolling batch) is held until a
 *    conclusive sample within the bounds arrives (then it promotes, or
 *    the next batch starts);
 *  - a step with no conclusive sample analysis-timeout after its weight
 *    was applied fails: too little traffic to judge is not a pass.
 *
 * With gate-mode = dry-run every verdict is reported with what it would
 * have done ("would roll back", "would hold"), and nothing is done.
 */
#include <stdio.h>

#include "fsm_int.h"
#include "httpgate.h"
#include "latrank.h"
#include "log.h"
#include "model.h"

bool fsm_gates_on(const struct service_conf *c)
{
	return latency_gate_key(c) != NULL;
}

bool fsm_gates_conclusive(const struct service_conf *c, const struct fsm_lat_sample *l)
{
	if (l->n < c->min_samples)
		return false;
	if ((c->min_success_bp || c->max_error_ratio > 0) && l->http_n < c->min_samples)
		return false;
	if (c->max_error_ratio > 0 && !(l->http_cmp && l->cmp_http_n >= c->min_samples))
		return false;
	return !(c->max_p99_ratio > 0) || (l->cmp && l->cmp_n >= c->min_samples);
}

/* A new step's weight is applied: its verdict starts over. */
void fsm_gates_step(struct fsm *f)
{
	struct rollout *ro = &f->s->ro;

	ro->gate_step_t = f->now;
	ro->gate_pass = false;
	ro->gate_holding = false;
	ro->gate_timed_out = false;
}

/* The bake of the step is over: hold it unless a conclusive sample passed. */
bool fsm_gates_hold(struct fsm *f)
{
	const struct service_conf *c = &f->s->conf;
	struct rollout *ro = &f->s->ro;

	if (!fsm_gates_on(c) || ro->gate_pass)
		return false;
	if (c->gate_dry_run) {
		if (!ro->gate_holding)
			log_info("%s: v%d would hold its step (dry-run): no verdict yet", c->name,
				 ro->new_num);
		ro->gate_holding = true; /* reported once; the step goes on */
		return false;
	}
	if (!ro->gate_holding) {
		ro->gate_holding = true;
		log_info("%s: v%d holds its %s: no verdict yet (fewer than min-samples %u "
			 "responses); fails after analysis-timeout %u ms",
			 c->name, ro->new_num, ro->stage == RO_ROLLING ? "next batch" : "step",
			 c->min_samples, c->analysis_timeout_ms);
		fsm_progress(f, "%s: v%d held: inconclusive, waiting for %u requests", c->name,
			     ro->new_num, c->min_samples);
	}
	return true;
}

static void fmt_ms(unsigned long long us, char *buf, int len)
{
	if (us >= 10000)
		snprintf(buf, len, "%llu ms", us / 1000);
	else
		snprintf(buf, len, "%.2f ms", us / 1000.0);
}

/* The rank test of the window against its comparison: 1 over the ratio, 0 within, -1 none. */
static int ratio_over(const struct service_conf *c, const struct fsm_lat_sample *l,
		      struct lat_rank *rk)
{
	if (!(c->max_p99_ratio > 0) || !l->win || !l->cmp)
		return -1;
	if (lat_rank_test(l->win, l->cmp, LAT_RESPONSE, c->max_p99_ratio, rk) < 0)
		return -1;
	return rk->p < (WEIGHT_MAX - c->confidence_bp) / (double)WEIGHT_MAX;
}

static void ratio_text(const struct service_conf *c, const struct version *v,
		       const struct fsm_lat_sample *l, const struct lat_rank *rk, bool over,
		       char *buf, int len)
{
	char a[32], b[32];

	fmt_ms(l->p99_us, a, sizeof(a));
	fmt_ms(l->cmp_p99_us, b, sizeof(b));
	snprintf(buf, len,
		 "%s response time %s %.3g x %s v%d's at %.4g%% confidence (rank test p %.2g; "
		 "p99 %s vs %s) over %llu and %llu requests",
		 vname(v), over ? ">" : "within", c->max_p99_ratio,
		 l->cmp_baseline ? "baseline" : "active", l->cmp_num, c->confidence_bp / 100.0,
		 rk->p, a, b, l->n, l->cmp_n);
}

/* Which side is short of min-samples, in words: "0 of min-samples 100 requests". */
static void short_text(const struct service_conf *c, const struct fsm_lat_sample *l, char *buf,
		       int len)
{
	bool http = c->min_success_bp || c->max_error_ratio > 0;

	if (l->n < c->min_samples)
		snprintf(buf, len, "%llu of min-samples %u requests", l->n, c->min_samples);
	else if (http && l->http_n < c->min_samples)
		snprintf(buf, len, "%llu of min-samples %u HTTP responses counted", l->http_n,
			 c->min_samples);
	else if (c->max_error_ratio > 0 && !(l->http_cmp && l->cmp_http_n >= c->min_samples))
		snprintf(buf, len,
			 "v%d (compared with) %llu of min-samples %u HTTP responses counted",
			 l->cmp_num, l->cmp_http_n, c->min_samples);
	else
		snprintf(buf, len, "v%d (compared with) %llu of min-samples %u requests",
			 l->cmp_num, l->cmp_n, c->min_samples);
}

static void inconclusive(struct fsm *f, struct version *v, const struct fsm_lat_sample *l)
{
	const struct service_conf *c = &f->s->conf;
	struct rollout *ro = &f->s->ro;
	const char *dry = c->gate_dry_run ? " (dry-run)" : "";
	char why[280], sh[120];
	enum rb_reason reason = RB_LATENCY;

	ro->gate_windows[2]++;
	short_text(c, l, sh, sizeof(sh));
	snprintf(ro->gate_last, sizeof(ro->gate_last), "inconclusive%s: %s in %llu ms", dry, sh,
		 l->window_ms);
	if (ro->gate_pass || ro->gate_timed_out ||
	    f->now - ro->gate_step_t < (long long)c->analysis_timeout_ms)
		return;
	/* Named for the gates that lacked data: only HTTP gates set, or HTTP responses missing. */
	if (l->n < c->min_samples) {
		snprintf(sh, sizeof(sh), "%llu requests", l->n);
	} else if ((c->min_success_bp || c->max_error_ratio > 0) && l->http_n < c->min_samples) {
		snprintf(sh, sizeof(sh), "%llu HTTP responses counted", l->http_n);
		reason = RB_HTTP;
	} else if (c->max_error_ratio > 0 && !(l->http_cmp && l->cmp_http_n >= c->min_samples)) {
		snprintf(sh, sizeof(sh), "v%d it is compared with had %llu HTTP responses counted",
			 l->cmp_num, l->cmp_http_n);
		reason = RB_HTTP;
	} else {
		snprintf(sh, sizeof(sh), "v%d it is compared with had %llu requests", l->cmp_num,
			 l->cmp_n);
	}
	if (!c->max_p99_ms && !c->max_accept_p99_ms && !(c->max_p99_ratio > 0))
		reason = RB_HTTP;
	snprintf(why, sizeof(why),
		 "%s inconclusive: %s in %.1f s, fewer than min-samples %u within "
		 "analysis-timeout %u ms",
		 vname(v), sh, l->window_ms / 1000.0, c->min_samples, c->analysis_timeout_ms);
	if (c->gate_dry_run) {
		ro->gate_timed_out = true;
		snprintf(ro->gate_last, sizeof(ro->gate_last), "dry-run, would roll back: %s", why);
		log_warnx("%s: would roll back (dry-run): %s", c->name, why);
		return;
	}
	fsm_rollout_fail(f, reason, why);
}

/*
 * The HTTP gates on a conclusive sample: why (and *reason) when one fails,
 * else "" with their figures in pass.
 */
static void http_gates(const struct service_conf *c, const struct version *v,
		       const struct fsm_lat_sample *l, char *why, int wlen, char *pass, int plen)
{
	struct http_window w = {l->http_n, l->http_5xx}, b = {l->cmp_http_n, l->cmp_http_5xx};
	double p, alpha = (WEIGHT_MAX - c->confidence_bp) / (double)WEIGHT_MAX;
	char rtext[200] = "";
	int n = 0;

	why[0] = pass[0] = 0;
	if (!l->http)
		return;
	if (c->max_error_ratio > 0 && l->http_cmp) {
		p = http_error_ratio_p(&w, &b, c->max_error_ratio);
		snprintf(rtext, sizeof(rtext),
			 "5xx rate %.3g%% %s %.3g x %s v%d's %.3g%% at %.4g%% confidence (p %.2g) "
			 "over %llu and %llu responses",
			 w.n ? 100.0 * w.e5 / w.n : 0.0, p < alpha ? ">" : "within",
			 c->max_error_ratio, l->cmp_baseline ? "baseline" : "active", l->cmp_num,
			 b.n ? 100.0 * b.e5 / b.n : 0.0, c->confidence_bp / 100.0, p, w.n, b.n);
		if (p < alpha) {
			snprintf(why, wlen, "%s %s (max-error-ratio)", vname(v), rtext);
			return;
		}
	}
	if (c->min_success_bp && http_success_below(&w, c->min_success_bp)) {
		snprintf(why, wlen,
			 "%s success %.1f%% < %.4g%% over %llu responses (min-success-rate)",
			 vname(v), http_success_pct(&w), c->min_success_bp / 100.0, w.n);
		return;
	}
	n = snprintf(pass, plen, "success %.1f%% over %llu responses", http_success_pct(&w), w.n);
	if (rtext[0] && n > 0 && n < plen)
		snprintf(pass + n, plen - n, "; %s", rtext);
}

void fsm_on_latency_sample(struct fsm *f, struct version *v, const struct fsm_lat_sample *l,
			   const char *text)
{
	const struct service_conf *c = &f->s->conf;
	struct rollout *ro = &f->s->ro;
	char why[280], a[32], b[32], rtext[200] = "", hwhy[280], hpass[280];
	const char *dry = c->gate_dry_run ? " (dry-run)" : "";
	enum rb_reason reason = RB_LATENCY;
	struct lat_rank rk;
	bool over_p99, over_acc;
	int over_ratio;

	if (!fsm_gates_on(c) || (ro->stage != RO_STEPPING && ro->stage != RO_ROLLING) ||
	    ro->new_num != v->num)
		return;
	if (!ro->gate_step_t)
		ro->gate_step_t = f->now; /* a rollout taken over from an earlier agent */
	if (!fsm_gates_conclusive(c, l)) {
		inconclusive(f, v, l);
		return;
	}
	over_p99 = c->max_p99_ms && l->p99_us > (unsigned long long)c->max_p99_ms * 1000;
	over_acc = c->max_accept_p99_ms && l->acc_n &&
		   l->acc_p99_us > (unsigned long long)c->max_accept_p99_ms * 1000;
	over_ratio = ratio_over(c, l, &rk);
	if (over_ratio >= 0)
		ratio_text(c, v, l, &rk, over_ratio, rtext, sizeof(rtext));
	http_gates(c, v, l, hwhy, sizeof(hwhy), hpass, sizeof(hpass));
	if (over_p99) {
		fmt_ms(l->p99_us, a, sizeof(a));
		fmt_ms((unsigned long long)c->max_p99_ms * 1000, b, sizeof(b));
		snprintf(why, sizeof(why), "%s p99 %s > max-p99 %s over %llu requests", vname(v), a,
			 b, l->n);
	} else if (over_acc) {
		fmt_ms(l->acc_p99_us, a, sizeof(a));
		fmt_ms((unsigned long long)c->max_accept_p99_ms * 1000, b, sizeof(b));
		snprintf(why, sizeof(why),
			 "%s accept wait p99 %s > max-accept-wait-p99 %s over %llu connections",
			 vname(v), a, b, l->acc_n);
	} else if (over_ratio > 0) {
		snprintf(why, sizeof(why), "%s (max-p99-ratio)", rtext);
	} else if (hwhy[0]) {
		snprintf(why, sizeof(why), "%s", hwhy);
		reason = RB_HTTP;
	} else if (ro->stage == RO_ROLLING && f->now - (long long)l->window_ms < ro->gate_step_t) {
		/*
		 * Within the bounds, but the window began before this batch's
		 * weight: it does not judge the batch.  The next one will.
		 */
		ro->gate_bad = 0;
		ro->gate_windows[0]++;
		snprintf(ro->gate_last, sizeof(ro->gate_last),
			 "pass%s, before this batch served: %s%s%s%s%s", dry, text,
			 rtext[0] ? "; " : "", rtext, hpass[0] ? "; " : "", hpass);
		log_info("%s: gates pass%s over a window begun before batch %d served: not "
			 "counted for it",
			 vname(v), dry, ro->batch);
		return;
	} else {
		ro->gate_bad = 0;
		ro->gate_pass = true;
		ro->gate_windows[0]++;
		snprintf(ro->gate_last, sizeof(ro->gate_last), "pass%s: %s%s%s%s%s", dry, text,
			 rtext[0] ? "; " : "", rtext, hpass[0] ? "; " : "", hpass);
		log_info("%s: latency gates pass%s: %s%s%s%s%s", vname(v), dry, text,
			 rtext[0] ? "; " : "", rtext, hpass[0] ? "; " : "", hpass);
		if (ro->gate_holding && !ro->paused && !c->gate_dry_run) {
			ro->gate_holding = false;
			if (ro->stage == RO_ROLLING)
				fsm_rolling_resume(f); /* the next batch, after its other holds */
			else
				fsm_rollout_promote(f, false);
		}
		return;
	}
	ro->gate_bad++;
	ro->gate_windows[1]++;
	if (c->gate_dry_run) {
		bool would = ro->gate_bad >= c->health_threshold;

		snprintf(ro->gate_last, sizeof(ro->gate_last), "dry-run, %s: %s",
			 would ? "would roll back" : "fail", why);
		log_warnx("%s (%d of %d in a row)%s", why, ro->gate_bad, c->health_threshold,
			  would ? ": would roll back (dry-run)" : " (dry-run)");
		return;
	}
	snprintf(ro->gate_last, sizeof(ro->gate_last), "fail: %s", why);
	log_warnx("%s (%d of %d in a row)", why, ro->gate_bad, c->health_threshold);
	if (ro->gate_bad >= c->health_threshold)
		fsm_rollout_fail(f, reason, why);
}
