/* plugins/scheduler/cycle.c — one scheduling cycle, as kube-scheduler's
 * schedulePod: PreFilter, Filter on every node (all of them: no
 * sampling), PostFilter when none fits, PreScore, Score, NormalizeScore,
 * weighted sum, the best node (ties broken at random), Reserve and Permit.
 * When no node fits, the reasons the filters gave are counted across
 * nodes into Kubernetes' message:
 *     0/5 nodes are available: 2 Insufficient cpu, 3 node(s) had
 *     untolerated taint {dedicated: gpu}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler.h"

bool sp_default_less(const struct sp_qpod *a, const struct sp_qpod *b)
{
	if (a->pod->priority != b->pod->priority)
		return a->pod->priority > b->pod->priority;
	return a->seq < b->seq;
}

void sp_outcome_clear(struct sp_outcome *o)
{
	free(o->message);
	kb_sched_cycle_free(o->cy);
	memset(o, 0, sizeof(*o));
}

/* --- the reasons histogram ------------------------------------------------------- */

struct reason {
	char text[KB_SCHED_REASON_MAX];
	size_t count;
};

struct hist {
	struct reason *v;
	size_t n, cap;
};

static void hist_add(struct hist *h, const char *text)
{
	for (size_t i = 0; i < h->n; i++) {
		if (!strcmp(h->v[i].text, text)) {
			h->v[i].count++;
			return;
		}
	}
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 8;
		struct reason *v = realloc(h->v, cap * sizeof(*v));
		if (v == NULL)
			return;
		h->v = v;
		h->cap = cap;
	}
	snprintf(h->v[h->n].text, sizeof(h->v[h->n].text), "%s", text);
	h->v[h->n++].count = 1;
}

static void hist_status(struct hist *h, const struct kb_sched_status *st,
    size_t times)
{
	for (size_t i = 0; i < kb_sched_status_nreasons(st); i++)
		for (size_t t = 0; t < times; t++)
			hist_add(h, kb_sched_status_reason(st, i));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Kubernetes sorts the "N reason" strings as strings. */
static char *fit_message(const struct hist *h, size_t nnodes)
{
	if (nnodes == 0)
		return strdup("no nodes available to schedule pods");
	char **items = calloc(h->n + 1, sizeof(char *));
	size_t len = 64;
	for (size_t i = 0; items && i < h->n; i++) {
		if (asprintf(&items[i], "%zu %s", h->v[i].count, h->v[i].text) <
		    0)
			items[i] = NULL;
		len += items[i] ? strlen(items[i]) + 2 : 0;
	}
	if (items)
		qsort(items, h->n, sizeof(char *), cmp_str);
	char *msg = malloc(len);
	if (msg) {
		size_t off = (size_t)snprintf(msg, len,
		    "0/%zu nodes are available:", nnodes);
		for (size_t i = 0; items && i < h->n; i++)
			if (items[i])
				off += (size_t)snprintf(msg + off, len - off,
				    "%s %s", i ? "," : "", items[i]);
		snprintf(msg + off, len - off, ".");
	}
	for (size_t i = 0; items && i < h->n; i++)
		free(items[i]);
	free(items);
	return msg;
}

static uint64_t next_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ULL;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static int error_out(struct sp_outcome *out, const char *policy,
    const char *point, const struct kb_sched_status *st)
{
	const char *why = kb_sched_status_nreasons(st) ?
	    kb_sched_status_reason(st, 0) :
	    "no reason given";
	out->code = KB_SCHED_ERROR;
	if (asprintf(&out->message, "running %s %s: %s", point, policy, why) <
	    0)
		out->message = NULL;
	return KB_SCHED_ERROR;
}

void sp_cycle_unreserve(struct sp_profile *prof, struct kb_sched_cycle *cy,
    const struct kb_sched_pod *pod, const char *node)
{
	for (size_t i = prof->npoints[P_RESERVE]; i-- > 0;) {
		const struct sp_policy *p = prof->points[P_RESERVE][i].p;
		if (KB_SCHED_HAS(p->ops, unreserve))
			p->ops->unreserve(p->state, cy, pod, node);
	}
}

int sp_cycle_run(struct sp_profile *prof, const struct kb_sched_snapshot *snap,
    const struct kb_sched_pod *pod, uint64_t *rng, struct sp_outcome *out)
{
	memset(out, 0, sizeof(*out));
	struct kb_sched_status *st = kb_sched_status_new();
	struct kb_sched_cycle *cy = kb_sched_cycle_new(snap);
	size_t nf = prof->npoints[P_FILTER], ns = prof->npoints[P_SCORE];
	bool *skip_f = calloc(nf + 1, sizeof(bool)),
	     *skip_s = calloc(ns + 1, sizeof(bool));
	const struct kb_sched_node **feasible =
	    calloc(snap->nnodes + 1, sizeof(*feasible));
	struct kb_sched_node_score *scores =
	    calloc(snap->nnodes + 1, sizeof(*scores));
	int64_t *total = calloc(snap->nnodes + 1, sizeof(*total));
	struct hist h = { 0 };
	size_t nfeas = 0;
	int rc = KB_SCHED_SUCCESS;
	if (!st || !cy || !skip_f || !skip_s || !feasible || !scores ||
	    !total) {
		out->code = rc = KB_SCHED_ERROR;
		out->message = strdup("out of memory");
		goto out;
	}

	/* PreFilter */
	for (size_t i = 0; i < prof->npoints[P_PREFILTER]; i++) {
		const struct sp_policy *p = prof->points[P_PREFILTER][i].p;
		kb_sched_status_reset(st);
		int r = p->ops->pre_filter(p->state, cy, pod, st);
		if (r == KB_SCHED_SKIP) {
			for (size_t j = 0; j < nf; j++)
				if (prof->points[P_FILTER][j].p == p)
					skip_f[j] = true;
		} else if (r == KB_SCHED_ERROR) {
			rc = error_out(out, p->name, "PreFilter", st);
			goto out;
		} else if (r != KB_SCHED_SUCCESS) {
			hist_status(&h, st, snap->nnodes);
			rc = KB_SCHED_UNSCHEDULABLE;
			goto unschedulable;
		}
	}

	/* Filter: the first policy to reject a node gives its reasons. */
	for (size_t n = 0; n < snap->nnodes; n++) {
		const struct kb_sched_node *node = snap->nodes[n];
		bool fits = true;
		for (size_t i = 0; fits && i < nf; i++) {
			if (skip_f[i])
				continue;
			const struct sp_policy *p = prof->points[P_FILTER][i].p;
			kb_sched_status_reset(st);
			int r = p->ops->filter(p->state, cy, pod, node, st);
			if (r == KB_SCHED_SUCCESS)
				continue;
			if (r == KB_SCHED_ERROR) {
				rc = error_out(out, p->name, "Filter", st);
				goto out;
			}
			fits = false;
			if (kb_sched_status_nreasons(st) == 0)
				kb_sched_reject(st, r,
				    "node(s) were rejected by %s", p->name);
			hist_status(&h, st, 1);
		}
		if (fits)
			feasible[nfeas++] = node;
	}
	if (nfeas == 0) {
		rc = KB_SCHED_UNSCHEDULABLE;
		goto unschedulable;
	}

	/* Score, unless only one node is left. */
	size_t best = 0;
	if (nfeas > 1) {
		for (size_t i = 0; i < prof->npoints[P_PRESCORE]; i++) {
			const struct sp_policy *p =
			    prof->points[P_PRESCORE][i].p;
			kb_sched_status_reset(st);
			int r = p->ops->pre_score(p->state, cy, pod, feasible,
			    nfeas, st);
			if (r == KB_SCHED_SKIP) {
				for (size_t j = 0; j < ns; j++)
					if (prof->points[P_SCORE][j].p == p)
						skip_s[j] = true;
			} else if (r != KB_SCHED_SUCCESS) {
				rc = error_out(out, p->name, "PreScore", st);
				goto out;
			}
		}
		for (size_t i = 0; i < ns; i++) {
			if (skip_s[i])
				continue;
			const struct sp_slot *sl = &prof->points[P_SCORE][i];
			const struct sp_policy *p = sl->p;
			for (size_t n = 0; n < nfeas; n++) {
				kb_sched_status_reset(st);
				scores[n].node = feasible[n];
				scores[n].score = 0;
				if (p->ops->score(p->state, cy, pod,
					feasible[n], &scores[n].score, st)) {
					rc = error_out(out, p->name, "Score",
					    st);
					goto out;
				}
			}
			if (KB_SCHED_HAS(p->ops, normalize_score)) {
				kb_sched_status_reset(st);
				if (p->ops->normalize_score(p->state, cy, pod,
					scores, nfeas, st)) {
					rc = error_out(out, p->name,
					    "NormalizeScore", st);
					goto out;
				}
			}
			for (size_t n = 0; n < nfeas; n++) {
				int64_t sc = scores[n].score;
				if (sc < 0 || sc > KB_SCHED_MAX_SCORE) {
					kb_sched_status_reset(st);
					kb_sched_reject(st, KB_SCHED_ERROR,
					    "score %lld of node %s is outside [0, 100]",
					    (long long)sc, feasible[n]->name);
					rc = error_out(out, p->name, "Score",
					    st);
					goto out;
				}
				total[n] += sc * sl->weight;
			}
		}
		/* The highest total; equal ones by reservoir sampling. */
		size_t ties = 1;
		for (size_t n = 1; n < nfeas; n++) {
			if (total[n] > total[best]) {
				best = n;
				ties = 1;
			} else if (total[n] == total[best] &&
			    next_rand(rng) % ++ties == 0) {
				best = n;
			}
		}
	}
	snprintf(out->node, sizeof(out->node), "%s", feasible[best]->name);

	/* Reserve, then Permit. */
	size_t reserved = 0;
	for (; reserved < prof->npoints[P_RESERVE]; reserved++) {
		const struct sp_policy *p = prof->points[P_RESERVE][reserved].p;
		if (!KB_SCHED_HAS(p->ops, reserve))
			continue;
		kb_sched_status_reset(st);
		if (p->ops->reserve(p->state, cy, pod, out->node, st)) {
			sp_cycle_unreserve(prof, cy, pod, out->node);
			rc = error_out(out, p->name, "Reserve", st);
			goto out;
		}
	}
	for (size_t i = 0; i < prof->npoints[P_PERMIT]; i++) {
		const struct sp_policy *p = prof->points[P_PERMIT][i].p;
		int64_t wait = 0;
		kb_sched_status_reset(st);
		int r = p->ops->permit(p->state, cy, pod, out->node, &wait, st);
		if (r == KB_SCHED_SUCCESS || r == KB_SCHED_WAIT)
			continue;
		sp_cycle_unreserve(prof, cy, pod, out->node);
		if (r == KB_SCHED_ERROR) {
			rc = error_out(out, p->name, "Permit", st);
			goto out;
		}
		rc = out->code = KB_SCHED_UNSCHEDULABLE;
		const char *why = kb_sched_status_nreasons(st) ?
		    kb_sched_status_reason(st, 0) :
		    "rejected";
		if (asprintf(&out->message, "pod rejected by permit %s: %s",
			p->name, why) < 0)
			out->message = NULL;
		goto out;
	}
	out->code = KB_SCHED_SUCCESS;
	out->cy = cy;
	cy = NULL;
	goto out;

unschedulable:
	for (size_t i = 0; i < prof->npoints[P_POSTFILTER]; i++) {
		const struct sp_policy *p = prof->points[P_POSTFILTER][i].p;
		const char *nominated = NULL;
		kb_sched_status_reset(st);
		p->ops->post_filter(p->state, cy, pod, &nominated, st);
	}
	out->code = KB_SCHED_UNSCHEDULABLE;
	out->message = fit_message(&h, snap->nnodes);
out:
	free(h.v);
	free(total);
	free(scores);
	free(feasible);
	free(skip_s);
	free(skip_f);
	kb_sched_cycle_free(cy);
	kb_sched_status_free(st);
	return rc;
}
