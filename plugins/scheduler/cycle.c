/* plugins/scheduler/cycle.c — one scheduling cycle, as kube-scheduler's
 * schedulePod: PreFilter, Filter on every node (all of them: no
 * sampling), PostFilter when none fits, PreScore, Score, NormalizeScore,
 * weighted sum, the best node (ties broken at random), Reserve and Permit.
 * Filter and Score run over contiguous parts of the node list on the
 * profile's worker pool (parallelism), each part calling every policy on
 * one node before the next (the node stays in cache); buffers live in the
 * profile's scratch, reused from cycle to cycle.
 * When no node fits, the reasons the filters gave are counted across
 * nodes into Kubernetes' message:
 *     0/5 nodes are available: 2 Insufficient cpu, 3 node(s) had
 *     untolerated taint {dedicated: gpu}. */
#include <stdatomic.h>
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

static void hist_add_n(struct hist *h, const char *text, size_t count)
{
	for (size_t i = 0; i < h->n; i++) {
		if (!strcmp(h->v[i].text, text)) {
			h->v[i].count += count;
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
	h->v[h->n++].count = count;
}

static void hist_status(struct hist *h, const struct kb_sched_status *st,
    size_t times)
{
	for (size_t i = 0; i < kb_sched_status_nreasons(st); i++)
		hist_add_n(h, kb_sched_status_reason(st, i), times);
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

/* --- the worker pool ------------------------------------------------------------- */

/* A job is a number of chunks; whoever is there takes the next one. The
 * scheduling thread takes chunks too and waits only for chunks a worker
 * has already started: a worker the machine does not run in time costs
 * nothing (the scheduling thread does its share), where a fixed split
 * would stall the cycle until it ran. */
struct sp_pool {
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	pthread_t *th;
	int nthreads;
	uint64_t gen; /* jobs started (mu) */
	bool open;    /* the job takes helpers (mu) */
	bool stop;
	/* the job (set under mu) */
	void (*fn)(void *arg, int chunk);
	void *arg;
	int nchunks;
	atomic_int next;   /* next chunk to take */
	atomic_int active; /* workers inside the job */
};

/* Take chunks until none is left. */
static void take_chunks(struct sp_pool *p, void (*fn)(void *, int), void *arg,
    int nchunks)
{
	for (;;) {
		int c = atomic_fetch_add(&p->next, 1);
		if (c >= nchunks)
			return;
		fn(arg, c);
	}
}

static void *worker(void *v)
{
	struct sp_pool *p = v;
	uint64_t seen = 0;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && p->gen == seen)
			pthread_cond_wait(&p->go, &p->mu);
		if (p->stop)
			break;
		seen = p->gen;
		if (!p->open)
			continue; /* woke too late: its job is over */
		void (*fn)(void *, int) = p->fn;
		void *arg = p->arg;
		int nchunks = p->nchunks;
		atomic_fetch_add(&p->active, 1);
		pthread_mutex_unlock(&p->mu);
		take_chunks(p, fn, arg, nchunks);
		pthread_mutex_lock(&p->mu);
		if (atomic_fetch_sub(&p->active, 1) == 1)
			pthread_cond_broadcast(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct sp_pool *sp_pool_new(int parallelism)
{
	struct sp_pool *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->go, NULL);
	pthread_cond_init(&p->done, NULL);
	if (parallelism > 1)
		p->th = calloc((size_t)parallelism - 1, sizeof(pthread_t));
	for (int i = 0; p->th && i < parallelism - 1; i++) {
		if (pthread_create(&p->th[i], NULL, worker, p))
			break;
		p->nthreads++;
	}
	return p;
}

void sp_pool_free(struct sp_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->go);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->th[i], NULL);
	free(p->th);
	pthread_cond_destroy(&p->go);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

int sp_pool_parts(const struct sp_pool *p)
{
	return p ? p->nthreads + 1 : 1;
}

/* fn(arg, chunk) for every chunk 0..nchunks-1, on this thread and any
 * worker that comes. */
static void pool_run(struct sp_pool *p, int nchunks,
    void (*fn)(void *arg, int chunk), void *arg)
{
	if (p == NULL || nchunks <= 1 || p->nthreads == 0) {
		for (int i = 0; i < nchunks; i++)
			fn(arg, i);
		return;
	}
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->arg = arg;
	p->nchunks = nchunks;
	atomic_store(&p->next, 0);
	p->gen++;
	p->open = true;
	pthread_cond_broadcast(&p->go);
	pthread_mutex_unlock(&p->mu);
	take_chunks(p, fn, arg, nchunks);
	/* Closed under the lock: no worker joins after this, and those that
	 * joined are waited for. */
	pthread_mutex_lock(&p->mu);
	p->open = false;
	while (atomic_load(&p->active) > 0)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

/* --- scratch: the cycle's buffers, kept between cycles --------------------------- */

#define MAX_PARTS 64
/* Fewer nodes than this per chunk are not worth a hand-over. */
#define MIN_PART_NODES 128

struct part {
	size_t begin, end; /* nodes (filter) or feasible nodes (score) */
	size_t nfeas;      /* filter: feasible ones found, at feas + begin */
	struct kb_sched_status *st;
	struct kb_sched_status *st1; /* per-node calls inside a batch */
	struct hist h;
	int err;
	bool eq_broken; /* a verdict the class cannot hold */
	const char *err_policy, *err_point;
	char err_why[KB_SCHED_REASON_MAX];
};

/* A slot this cycle calls (not skipped by its Pre- point), unpacked. */
struct active {
	int (*filter)(void *, struct kb_sched_cycle *,
	    const struct kb_sched_pod *, const struct kb_sched_node *,
	    struct kb_sched_status *);
	int (*score)(void *, struct kb_sched_cycle *,
	    const struct kb_sched_pod *, const struct kb_sched_node *,
	    int64_t *, struct kb_sched_status *);
	/* the batch slots, when the policy has them and the snapshot has
	 * columns */
	int (*filter_nodes)(void *, struct kb_sched_cycle *,
	    const struct kb_sched_pod *, const struct kb_sched_columns *,
	    const uint32_t *, size_t, uint64_t *, struct kb_sched_status *);
	int (*score_nodes)(void *, struct kb_sched_cycle *,
	    const struct kb_sched_pod *, const struct kb_sched_columns *,
	    const uint32_t *, size_t, int64_t *, struct kb_sched_status *);
	void *state;
	const struct sp_policy *p;
	size_t row;     /* score: its row in scores */
	int64_t weight; /* score: added into total at once (no Normalize) */
	bool normalize; /* score: kept in its row for NormalizeScore */
};

struct sp_scratch {
	struct active *act_f, *act_s;
	size_t nact_f, nact_s;
	size_t cap; /* nodes */
	size_t nscore;
	const struct kb_sched_node **feasible;
	uint32_t *rows;      /* filter: each part's nodes still feasible */
	uint32_t *feas_rows; /* the feasible nodes' rows */
	uint64_t *fout;      /* filter_nodes' verdicts */
	int64_t *sval;       /* one policy's scores */
	struct kb_sched_node_score *scores; /* nscore rows of cap */
	int64_t *total;
	bool *skip_f, *skip_s;
	uint32_t *stale;      /* rows the equivalence class computes again */
	uint64_t *prev;       /* their verdicts before */
	struct part parts[MAX_PARTS];
	/* the cycle at hand */
	struct sp_profile *prof;
	const struct kb_sched_snapshot *snap;
	const struct kb_sched_pod *pod;
	struct kb_sched_cycle *cy;
	const struct kb_sched_columns *cols; /* the snapshot's, or NULL */
	struct sp_eqclass *ec; /* the pod's equivalence class, or NULL */
	int nparts;
};

void sp_scratch_free(struct sp_scratch *sc)
{
	if (sc == NULL)
		return;
	free(sc->feasible);
	free(sc->rows);
	free(sc->feas_rows);
	free(sc->fout);
	free(sc->sval);
	free(sc->scores);
	free(sc->total);
	free(sc->stale);
	free(sc->prev);
	free(sc->skip_f);
	free(sc->skip_s);
	free(sc->act_f);
	free(sc->act_s);
	for (int i = 0; i < MAX_PARTS; i++) {
		kb_sched_status_free(sc->parts[i].st);
		kb_sched_status_free(sc->parts[i].st1);
		free(sc->parts[i].h.v);
	}
	free(sc);
}

static struct sp_scratch *scratch_get(struct sp_profile *prof, size_t nnodes)
{
	struct sp_scratch *sc = prof->scratch;
	size_t nf = prof->npoints[P_FILTER], ns = prof->npoints[P_SCORE];
	if (sc == NULL) {
		sc = calloc(1, sizeof(*sc));
		if (sc == NULL)
			return NULL;
		sc->skip_f = calloc(nf + 1, sizeof(bool));
		sc->skip_s = calloc(ns + 1, sizeof(bool));
		sc->act_f = calloc(nf + 1, sizeof(struct active));
		sc->act_s = calloc(ns + 1, sizeof(struct active));
		bool ok = true;
		for (int i = 0; i < MAX_PARTS; i++) {
			sc->parts[i].st = kb_sched_status_new();
			sc->parts[i].st1 = kb_sched_status_new();
			ok = ok && sc->parts[i].st && sc->parts[i].st1;
		}
		sc->nscore = ns;
		prof->scratch = sc;
		if (!sc->skip_f || !sc->skip_s || !sc->act_f || !sc->act_s ||
		    !ok)
			return NULL;
	}
	if (nnodes + 1 > sc->cap) {
		size_t cap = nnodes + 1 + nnodes / 4;
		free(sc->feasible);
		free(sc->rows);
		free(sc->feas_rows);
		free(sc->fout);
		free(sc->sval);
		free(sc->scores);
		free(sc->total);
		free(sc->stale);
		free(sc->prev);
		sc->feasible = calloc(cap, sizeof(*sc->feasible));
		sc->rows = calloc(cap, sizeof(*sc->rows));
		sc->feas_rows = calloc(cap, sizeof(*sc->feas_rows));
		sc->fout = calloc(cap, sizeof(*sc->fout));
		sc->sval = calloc(cap, sizeof(*sc->sval));
		sc->scores = calloc(cap * (ns ? ns : 1), sizeof(*sc->scores));
		sc->total = calloc(cap, sizeof(*sc->total));
		sc->stale = calloc(cap, sizeof(*sc->stale));
		sc->prev = calloc(cap, sizeof(*sc->prev));
		sc->cap = (sc->feasible && sc->rows && sc->feas_rows &&
			      sc->fout && sc->sval && sc->scores && sc->total &&
			      sc->stale && sc->prev) ?
		    cap :
		    0;
		if (sc->cap == 0)
			return NULL;
	}
	memset(sc->skip_f, 0, (nf + 1) * sizeof(bool));
	memset(sc->skip_s, 0, (ns + 1) * sizeof(bool));
	return sc;
}

static void split(struct sp_scratch *sc, size_t n, int parts)
{
	for (int i = 0; i < parts; i++) {
		struct part *pt = &sc->parts[i];
		pt->begin = n * (size_t)i / (size_t)parts;
		pt->end = n * (size_t)(i + 1) / (size_t)parts;
		pt->nfeas = 0;
		pt->err = 0;
		pt->eq_broken = false;
		pt->h.n = 0;
		kb_sched_status_reset(pt->st);
	}
}

/* One chunk without workers; else chunks of MIN_PART_NODES or more, at
 * most MAX_PARTS. */
static int parts_for(const struct sp_profile *prof, size_t n)
{
	if (sp_pool_parts(prof->pool) <= 1)
		return 1;
	size_t parts = n / MIN_PART_NODES;
	if (parts > MAX_PARTS)
		parts = MAX_PARTS;
	return parts < 1 ? 1 : (int)parts;
}

static void part_error(struct part *pt, const struct sp_policy *p,
    const char *point)
{
	pt->err = KB_SCHED_ERROR;
	pt->err_policy = p->name;
	pt->err_point = point;
	snprintf(pt->err_why, sizeof(pt->err_why), "%s",
	    kb_sched_status_nreasons(pt->st) ?
		kb_sched_status_reason(pt->st, 0) :
		"no reason given");
}

/* Nodes are separate allocations: fetch the ones a few steps ahead
 * (their typed part, a few cache lines) while policies run on this one. */
#define PREFETCH 6

static inline void prefetch_node(const struct kb_sched_node *n)
{
	const char *p = (const char *)n;
	for (size_t off = 0; off < sizeof(*n); off += 64)
		__builtin_prefetch(p + off);
}

/* A node one policy rejected: its reasons counted once (the policy's
 * name when it gave none). */
static void rejected(struct part *pt, struct kb_sched_status *st, int r,
    const struct sp_policy *p)
{
	if (kb_sched_status_nreasons(st) == 0)
		kb_sched_reject(st, r, "node(s) were rejected by %s", p->name);
	hist_status(&pt->h, st, 1);
	kb_sched_status_reset(st);
}

/* Filter one node with the policy's per-node slot: 1 fits, 0 rejected,
 * -1 error (the part holds it). */
static int filter_one(struct sp_scratch *sc, struct part *pt,
    const struct active *a, const struct kb_sched_node *node,
    struct kb_sched_status *st)
{
	int r = a->filter(a->state, sc->cy, sc->pod, node, st);
	if (r == KB_SCHED_SUCCESS)
		return 1;
	if (r == KB_SCHED_ERROR) {
		if (st != pt->st) {
			kb_sched_status_reset(pt->st);
			for (size_t i = 0; i < kb_sched_status_nreasons(st);
			     i++)
				kb_sched_reject(pt->st, r, "%s",
				    kb_sched_status_reason(st, i));
		}
		part_error(pt, a->p, "Filter");
		return -1;
	}
	rejected(pt, st, r, a->p);
	return 0;
}

/* One batch's verdicts: keep the nodes that fit (in order), count the
 * reasons of the others per reason bit, ask Filter where the policy said
 * so. The new number of rows, or -1 on error. */
static long batch_verdicts(struct sp_scratch *sc, struct part *pt,
    const struct active *a, uint32_t *rows, size_t m, const uint64_t *out)
{
	const struct kb_sched_node *const *nodes = sc->snap->nodes;
	uint32_t counts[KB_SCHED_REASON_BITS];
	size_t nr = kb_sched_status_nreasons(pt->st), unnamed = 0;
	bool any = false;
	size_t k = 0;
	for (size_t j = 0; j < m; j++) {
		uint64_t o = out[j];
		if (o == 0) {
			rows[k++] = rows[j];
			continue;
		}
		if (o & KB_SCHED_ASK_NODE) {
			kb_sched_status_reset(pt->st1);
			int f = filter_one(sc, pt, a, nodes[rows[j]], pt->st1);
			if (f < 0)
				return -1;
			if (f)
				rows[k++] = rows[j];
			continue;
		}
		if (!any) {
			memset(counts, 0, sizeof(counts));
			any = true;
		}
		uint64_t named = nr < 64 ? o & ((1ULL << nr) - 1) : o;
		if (named == 0)
			unnamed++;
		while (named) {
			counts[__builtin_ctzll(named)]++;
			named &= named - 1;
		}
	}
	for (size_t b = 0; any && b < nr; b++)
		if (counts[b])
			hist_add_n(&pt->h, kb_sched_status_reason(pt->st, b),
			    counts[b]);
	if (unnamed) {
		char why[KB_SCHED_REASON_MAX];
		snprintf(why, sizeof(why), "node(s) were rejected by %s",
		    a->p->name);
		hist_add_n(&pt->h, why, unnamed);
	}
	return (long)k;
}

/* Filter the part's nodes: each policy in turn on the nodes the ones
 * before it let through (so the first to reject a node gives the reasons
 * counted for it), a batch slot in one call; the feasible nodes kept in
 * node order. */
static void filter_part(void *arg, int idx)
{
	struct sp_scratch *sc = arg;
	if (idx >= sc->nparts)
		return;
	struct part *pt = &sc->parts[idx];
	const struct active *act = sc->act_f;
	size_t nf = sc->nact_f;
	const struct kb_sched_node *const *nodes = sc->snap->nodes;
	uint32_t *rows = sc->rows + pt->begin;
	uint64_t *out = sc->fout + pt->begin;
	size_t m = pt->end - pt->begin;
	for (size_t j = 0; j < m; j++)
		rows[j] = (uint32_t)(pt->begin + j);
	for (size_t i = 0; m && i < nf; i++) {
		const struct active *a = &act[i];
		if (a->filter_nodes) {
			kb_sched_status_reset(pt->st);
			if (a->filter_nodes(a->state, sc->cy, sc->pod, sc->cols,
				rows, m, out, pt->st) == KB_SCHED_ERROR) {
				part_error(pt, a->p, "Filter");
				pt->nfeas = 0;
				return;
			}
			long k = batch_verdicts(sc, pt, a, rows, m, out);
			kb_sched_status_reset(pt->st);
			if (k < 0)
				return;
			m = (size_t)k;
			continue;
		}
		size_t k = 0;
		for (size_t j = 0; j < m; j++) {
			if (j + PREFETCH < m)
				prefetch_node(nodes[rows[j + PREFETCH]]);
			int f = filter_one(sc, pt, a, nodes[rows[j]], pt->st);
			if (f < 0)
				return;
			if (f)
				rows[k++] = rows[j];
		}
		m = k;
	}
	const struct kb_sched_node **feas = sc->feasible + pt->begin;
	uint32_t *frows = sc->feas_rows + pt->begin;
	for (size_t j = 0; j < m; j++) {
		feas[j] = nodes[rows[j]];
		frows[j] = rows[j];
	}
	pt->nfeas = m;
}

/* Score the part's feasible nodes: each policy in turn (a batch slot in
 * one call), its scores kept for NormalizeScore or weighted into total. */
static void score_part(void *arg, int idx)
{
	struct sp_scratch *sc = arg;
	if (idx >= sc->nparts)
		return;
	struct part *pt = &sc->parts[idx];
	const struct active *act = sc->act_s;
	size_t ns = sc->nact_s, cap = sc->cap;
	size_t b = pt->begin, m = pt->end - pt->begin;
	const struct kb_sched_node *const *nodes = sc->feasible + b;
	int64_t *v = sc->sval + b, *total = sc->total + b;
	memset(total, 0, m * sizeof(*total));
	for (size_t i = 0; i < ns; i++) {
		const struct active *a = &act[i];
		if (a->score_nodes) {
			if (a->score_nodes(a->state, sc->cy, sc->pod, sc->cols,
				sc->feas_rows + b, m, v, pt->st)) {
				part_error(pt, a->p, "Score");
				return;
			}
		} else {
			for (size_t n = 0; n < m; n++) {
				if (n + PREFETCH < m)
					prefetch_node(nodes[n + PREFETCH]);
				v[n] = 0;
				if (a->score(a->state, sc->cy, sc->pod,
					nodes[n], &v[n], pt->st)) {
					part_error(pt, a->p, "Score");
					return;
				}
			}
		}
		if (a->normalize) {
			struct kb_sched_node_score *s =
			    &sc->scores[a->row * cap + b];
			for (size_t n = 0; n < m; n++) {
				s[n].node = nodes[n];
				s[n].score = v[n];
			}
			continue;
		}
		/* Without NormalizeScore it must be in range now. */
		int64_t w = a->weight;
		bool bad = false;
		for (size_t n = 0; n < m; n++) {
			bad |= (uint64_t)v[n] > KB_SCHED_MAX_SCORE;
			total[n] += v[n] * w;
		}
		for (size_t n = 0; bad && n < m; n++) {
			if (v[n] >= 0 && v[n] <= KB_SCHED_MAX_SCORE)
				continue;
			kb_sched_reject(pt->st, KB_SCHED_ERROR,
			    "score %lld of node %s is outside [0, 100]",
			    (long long)v[n], nodes[n]->name);
			part_error(pt, a->p, "Score");
			return;
		}
	}
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

static int part_error_out(struct sp_outcome *out, const struct part *pt)
{
	out->code = KB_SCHED_ERROR;
	if (asprintf(&out->message, "running %s %s: %s", pt->err_point,
		pt->err_policy, pt->err_why) < 0)
		out->message = NULL;
	return KB_SCHED_ERROR;
}

/* --- the equivalence cache ---------------------------------------------------------
 *
 * When every Filter and Score policy of the profile says its verdicts on a
 * node depend only on the pod and that node (node_local), the pod's class
 * (eqcache.c) holds per node row the Filter verdict and the raw scores
 * computed at the node's generation. A cycle computes only the rows whose
 * node changed (chunks on the pool, as a full pass), then counts the
 * reasons and lists the feasible nodes from every row, runs PreScore,
 * scores the feasible rows without scores, hands every feasible node's
 * raw score to NormalizeScore and sums: what a full pass gives. */

/* The class when it may serve this pod, else NULL. */
static struct sp_eqclass *eq_use(struct sp_profile *prof, struct sp_scratch *sc,
    struct kb_sched_cycle *cy, const struct kb_sched_pod *pod,
    const struct kb_sched_snapshot *snap)
{
	size_t nf = prof->npoints[P_FILTER], ns = prof->npoints[P_SCORE];
	if (!prof->eq_on || nf > 64 || ns > 64 ||
	    (snap->nnodes && !KB_SCHED_FIELD(snap->nodes[0], generation)) ||
	    (sc->cols && !KB_SCHED_FIELD(sc->cols, gen)))
		return NULL;
	if (prof->eq == NULL && (prof->eq = sp_eq_new(ns)) == NULL)
		return NULL;
	prof->eq->cycles++;
	uint64_t fmask = 0;
	for (size_t i = 0; i < nf + ns; i++) {
		const struct sp_policy *p = i < nf ?
		    prof->points[P_FILTER][i].p :
		    prof->points[P_SCORE][i - nf].p;
		if (i < nf) {
			if (sc->skip_f[i])
				continue;
			fmask |= 1ULL << i;
		}
		if (!KB_SCHED_HAS(p->ops, node_local) ||
		    !p->ops->node_local(p->state, cy, pod))
			return NULL;
	}
	struct sp_eqclass *ec = sp_eq_class(prof->eq, pod, snap->nnodes);
	if (ec == NULL)
		return NULL;
	if (!ec->fvalid || ec->fmask != fmask) {
		sp_eq_reset(ec);
		ec->fmask = fmask;
		ec->fvalid = true;
		ec->svalid = false;
	}
	prof->eq->cached++;
	return ec;
}

/* Add a reason to a row's verdict; false when the class cannot hold it
 * (its table is full, or the node gives one reason twice, which a full
 * pass would count twice). */
static bool eq_mask_add(struct sp_eqclass *ec, const char *text, uint64_t *mask)
{
	int b = sp_eq_reason(ec, text);
	if (b < 0 || (*mask >> b) & 1)
		return false;
	*mask |= 1ULL << b;
	return true;
}

/* A node one policy rejected through its per-node slot: its reasons (the
 * policy's name when none), as rejected() counts them. */
static bool eq_status_mask(struct sp_eqclass *ec,
    const struct kb_sched_status *st, const struct sp_policy *p, uint64_t *mask)
{
	size_t nr = kb_sched_status_nreasons(st);
	if (nr == 0) {
		char why[KB_SCHED_REASON_MAX];
		snprintf(why, sizeof(why), "node(s) were rejected by %s",
		    p->name);
		return eq_mask_add(ec, why, mask);
	}
	for (size_t i = 0; i < nr; i++)
		if (!eq_mask_add(ec, kb_sched_status_reason(st, i), mask))
			return false;
	return true;
}

static void eq_filter_error(struct part *pt, const struct active *a,
    const struct kb_sched_status *st)
{
	if (st != pt->st) {
		kb_sched_status_reset(pt->st);
		for (size_t i = 0; i < kb_sched_status_nreasons(st); i++)
			kb_sched_reject(pt->st, KB_SCHED_ERROR, "%s",
			    kb_sched_status_reason(st, i));
	}
	part_error(pt, a->p, "Filter");
}

/* Filter the part's stale rows as filter_part does, each row's verdict
 * into the class; then their generation. */
static void eq_filter_part(void *arg, int idx)
{
	struct sp_scratch *sc = arg;
	if (idx >= sc->nparts)
		return;
	struct part *pt = &sc->parts[idx];
	struct sp_eqclass *ec = sc->ec;
	const struct active *act = sc->act_f;
	size_t nf = sc->nact_f;
	const struct kb_sched_node *const *nodes = sc->snap->nodes;
	uint32_t *rows = sc->rows + pt->begin;
	uint64_t *out = sc->fout + pt->begin;
	size_t m = pt->end - pt->begin;
	memcpy(rows, sc->stale + pt->begin, m * sizeof(*rows));
	for (size_t j = 0; j < m; j++)
		sc->prev[pt->begin + j] = ec->verdict[rows[j]];
	for (size_t i = 0; m && i < nf; i++) {
		const struct active *a = &act[i];
		size_t k = 0;
		if (a->filter_nodes) {
			kb_sched_status_reset(pt->st);
			if (a->filter_nodes(a->state, sc->cy, sc->pod, sc->cols,
				rows, m, out, pt->st) == KB_SCHED_ERROR) {
				part_error(pt, a->p, "Filter");
				return;
			}
			size_t nr = kb_sched_status_nreasons(pt->st);
			for (size_t j = 0; j < m; j++) {
				uint64_t o = out[j], mask = 0;
				uint32_t r = rows[j];
				if (o == 0) {
					rows[k++] = r;
					continue;
				}
				if (o & KB_SCHED_ASK_NODE) {
					kb_sched_status_reset(pt->st1);
					int f = a->filter(a->state, sc->cy,
					    sc->pod, nodes[r], pt->st1);
					if (f == KB_SCHED_SUCCESS) {
						rows[k++] = r;
						continue;
					}
					if (f == KB_SCHED_ERROR) {
						eq_filter_error(pt, a, pt->st1);
						return;
					}
					if (!eq_status_mask(ec, pt->st1, a->p,
						&mask)) {
						pt->eq_broken = true;
						return;
					}
					ec->verdict[r] = mask;
					continue;
				}
				uint64_t named =
				    nr < 64 ? o & ((1ULL << nr) - 1) : o;
				bool ok = true;
				if (named == 0) {
					char why[KB_SCHED_REASON_MAX];
					snprintf(why, sizeof(why),
					    "node(s) were rejected by %s",
					    a->p->name);
					ok = eq_mask_add(ec, why, &mask);
				}
				for (; ok && named; named &= named - 1)
					ok = eq_mask_add(ec,
					    kb_sched_status_reason(pt->st,
						(size_t)__builtin_ctzll(named)),
					    &mask);
				if (!ok) {
					pt->eq_broken = true;
					return;
				}
				ec->verdict[r] = mask;
			}
			kb_sched_status_reset(pt->st);
		} else {
			for (size_t j = 0; j < m; j++) {
				uint32_t r = rows[j];
				uint64_t mask = 0;
				kb_sched_status_reset(pt->st);
				int f = a->filter(a->state, sc->cy, sc->pod,
				    nodes[r], pt->st);
				if (f == KB_SCHED_SUCCESS) {
					rows[k++] = r;
					continue;
				}
				if (f == KB_SCHED_ERROR) {
					eq_filter_error(pt, a, pt->st);
					return;
				}
				if (!eq_status_mask(ec, pt->st, a->p, &mask)) {
					pt->eq_broken = true;
					return;
				}
				ec->verdict[r] = mask;
			}
			kb_sched_status_reset(pt->st);
		}
		m = k;
	}
	for (size_t j = 0; j < m; j++)
		ec->verdict[rows[j]] = 0;
	const uint64_t *g = sc->cols ? sc->cols->gen : NULL;
	for (size_t j = pt->begin; j < pt->end; j++) {
		uint32_t r = sc->stale[j];
		ec->gen[r] = g ? g[r] : nodes[r]->generation;
	}
}

/* Filter through the class: the rows whose node changed computed again,
 * then every row's verdict counted. SUCCESS (*nfeas, sc->feasible and
 * feas_rows, h filled), ERROR (out says why) or UNSCHEDULABLE: the class
 * cannot hold a verdict, do a full pass. */
static int eq_filter(struct sp_scratch *sc, struct hist *h, size_t *nfeas,
    struct sp_outcome *out)
{
	struct sp_eqclass *ec = sc->ec;
	const struct kb_sched_node *const *nodes = sc->snap->nodes;
	size_t n = sc->snap->nnodes, nst = 0;
	const uint64_t *g = sc->cols ? sc->cols->gen : NULL;
	if (g) {
		/* Most rows are current: look at 8 at a time. */
		const uint64_t *e = ec->gen;
		size_t r = 0;
		for (; r + 8 <= n; r += 8) {
			uint64_t d = 0;
			for (size_t i = 0; i < 8; i++)
				d |= g[r + i] ^ e[r + i];
			if (d == 0)
				continue;
			for (size_t i = r; i < r + 8; i++)
				if (g[i] != e[i])
					sc->stale[nst++] = (uint32_t)i;
		}
		for (; r < n; r++)
			if (g[r] != e[r])
				sc->stale[nst++] = (uint32_t)r;
	} else {
		for (size_t r = 0; r < n; r++)
			if (nodes[r]->generation != ec->gen[r])
				sc->stale[nst++] = (uint32_t)r;
	}
	if (nst) {
		sc->nparts = parts_for(sc->prof, nst);
		split(sc, nst, sc->nparts);
		pool_run(sc->prof->pool, sc->nparts, eq_filter_part, sc);
		bool broken = false;
		for (int i = 0; i < sc->nparts; i++) {
			if (sc->parts[i].err) {
				sp_eq_reset(ec); /* all again next time */
				return part_error_out(out, &sc->parts[i]);
			}
			broken |= sc->parts[i].eq_broken;
		}
		if (broken)
			return KB_SCHED_UNSCHEDULABLE;
		sc->prof->eq->rows_filtered += (int64_t)nst;
	}
	/* The feasible list and the counts: kept, or made again when a row
	 * changed sides. A row computed again loses its scores; one that
	 * fits is queued to score. */
	for (size_t j = 0; j < nst; j++) {
		uint32_t r = sc->stale[j];
		uint64_t v = ec->verdict[r], o = sc->prev[j];
		if (v == 0) {
			if (ec->scored[r] != 2) {
				ec->scored[r] = 2;
				ec->pend[ec->npend++] = r;
			}
		} else if (ec->scored[r] == 1) {
			ec->scored[r] = 0;
		}
		if (!ec->lvalid)
			continue;
		if ((v == 0) != (ec->fpos[r] >= 0)) {
			ec->lvalid = false;
			continue;
		}
		if (v == 0) {
			ec->fnodes[ec->fpos[r]] = nodes[r];
			continue;
		}
		for (; o; o &= o - 1)
			ec->counts[__builtin_ctzll(o)]--;
		for (; v; v &= v - 1)
			ec->counts[__builtin_ctzll(v)]++;
	}
	if (!ec->lvalid) {
		size_t k = 0;
		memset(ec->counts, 0, sizeof(ec->counts));
		for (size_t r = 0; r < n; r++) {
			uint64_t v = ec->verdict[r];
			if (v == 0) {
				ec->fpos[r] = (int32_t)k;
				ec->fnodes[k] = nodes[r];
				ec->frows[k++] = (uint32_t)r;
				continue;
			}
			ec->fpos[r] = -1;
			for (; v; v &= v - 1)
				ec->counts[__builtin_ctzll(v)]++;
		}
		ec->nf = k;
		ec->lvalid = true;
		ec->tvalid = false;
	}
	for (size_t b = 0; b < ec->nreasons; b++)
		if (ec->counts[b])
			hist_add_n(h, ec->reasons[b], ec->counts[b]);
	*nfeas = ec->nf;
	return KB_SCHED_SUCCESS;
}

/* Score the part's rows (in sc->rows) with every active policy: raw
 * scores and the weighted sum of those without NormalizeScore into the
 * class. */
static void eq_score_part(void *arg, int idx)
{
	struct sp_scratch *sc = arg;
	if (idx >= sc->nparts)
		return;
	struct part *pt = &sc->parts[idx];
	struct sp_eqclass *ec = sc->ec;
	const struct active *act = sc->act_s;
	size_t ns = sc->nact_s;
	size_t b = pt->begin, m = pt->end - pt->begin;
	const struct kb_sched_node *const *nodes = sc->snap->nodes;
	const uint32_t *rows = sc->rows + b;
	int64_t *v = sc->sval + b, *sum = sc->total + b;
	memset(sum, 0, m * sizeof(*sum));
	for (size_t i = 0; i < ns; i++) {
		const struct active *a = &act[i];
		if (a->score_nodes) {
			if (a->score_nodes(a->state, sc->cy, sc->pod, sc->cols,
				rows, m, v, pt->st)) {
				part_error(pt, a->p, "Score");
				return;
			}
		} else {
			for (size_t j = 0; j < m; j++) {
				v[j] = 0;
				if (a->score(a->state, sc->cy, sc->pod,
					nodes[rows[j]], &v[j], pt->st)) {
					part_error(pt, a->p, "Score");
					return;
				}
			}
		}
		int64_t *raw = ec->raw + a->row * ec->n;
		for (size_t j = 0; j < m; j++)
			raw[rows[j]] = v[j];
		if (a->normalize)
			continue;
		int64_t w = a->weight;
		for (size_t j = 0; j < m; j++) {
			if ((uint64_t)v[j] > KB_SCHED_MAX_SCORE) {
				kb_sched_reject(pt->st, KB_SCHED_ERROR,
				    "score %lld of node %s is outside [0, 100]",
				    (long long)v[j], nodes[rows[j]]->name);
				part_error(pt, a->p, "Score");
				return;
			}
			sum[j] += v[j] * w;
		}
	}
	for (size_t j = 0; j < m; j++) {
		ec->ptotal[rows[j]] = sum[j];
		ec->scored[rows[j]] = 1;
	}
}

/* Score through the class: the queued rows (every feasible row when the
 * active policies changed) scored, the feasible rows' sums kept up to
 * date; then the NormalizeScore rows filled for every feasible node as
 * score_part fills them. The totals to pick from into *tot: the class's
 * own when no policy normalizes, else sc->total. */
static int eq_score(struct sp_scratch *sc, size_t nfeas, const int64_t **tot,
    struct sp_outcome *out)
{
	struct sp_eqclass *ec = sc->ec;
	uint64_t smask = 0;
	bool norm = false;
	for (size_t i = 0; i < sc->nact_s; i++) {
		smask |= 1ULL << sc->act_s[i].row;
		norm |= sc->act_s[i].normalize;
	}
	if (!ec->svalid || ec->smask != smask) {
		memset(ec->scored, 0, ec->n ? ec->n : 1);
		ec->npend = 0;
		for (size_t j = 0; j < ec->nf; j++) {
			ec->scored[ec->frows[j]] = 2;
			ec->pend[ec->npend++] = ec->frows[j];
		}
		ec->smask = smask;
		ec->svalid = true;
		ec->tvalid = false;
	}
	size_t m = 0;
	for (size_t k = 0; k < ec->npend; k++) {
		uint32_t r = ec->pend[k];
		if (ec->scored[r] != 2)
			continue;
		if (ec->verdict[r] == 0)
			sc->rows[m++] = r;
		else
			ec->scored[r] = 0;
	}
	ec->npend = 0;
	if (m) {
		sc->nparts = parts_for(sc->prof, m);
		split(sc, m, sc->nparts);
		pool_run(sc->prof->pool, sc->nparts, eq_score_part, sc);
		for (int i = 0; i < sc->nparts; i++) {
			if (sc->parts[i].err) {
				ec->svalid = false; /* all again next time */
				return part_error_out(out, &sc->parts[i]);
			}
		}
		sc->prof->eq->rows_scored += (int64_t)m;
	}
	const uint32_t *fr = ec->frows;
	if (ec->tvalid) {
		for (size_t k = 0; k < m; k++)
			ec->ftotal[ec->fpos[sc->rows[k]]] =
			    ec->ptotal[sc->rows[k]];
	} else {
		for (size_t j = 0; j < nfeas; j++)
			ec->ftotal[j] = ec->ptotal[fr[j]];
		ec->tvalid = true;
	}
	*tot = ec->ftotal;
	if (!norm)
		return KB_SCHED_SUCCESS;
	memcpy(sc->total, ec->ftotal, nfeas * sizeof(*sc->total));
	*tot = sc->total;
	for (size_t i = 0; i < sc->nact_s; i++) {
		const struct active *a = &sc->act_s[i];
		if (!a->normalize)
			continue;
		const int64_t *raw = ec->raw + a->row * ec->n;
		struct kb_sched_node_score *s = &sc->scores[a->row * sc->cap];
		for (size_t j = 0; j < nfeas; j++) {
			s[j].node = ec->fnodes[j];
			s[j].score = raw[fr[j]];
		}
	}
	return KB_SCHED_SUCCESS;
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
	struct sp_scratch *sc = scratch_get(prof, snap->nnodes);
	struct hist h = { 0 };
	size_t nfeas = 0;
	int rc = KB_SCHED_SUCCESS;
	/* the feasible nodes and their totals: the scratch's, or the
	 * equivalence class's */
	const struct kb_sched_node *const *feas = NULL;
	const int64_t *tot = NULL;
	if (!st || !cy || !sc) {
		out->code = rc = KB_SCHED_ERROR;
		out->message = strdup("out of memory");
		goto out;
	}
	sc->prof = prof;
	sc->snap = snap;
	sc->pod = pod;
	sc->cy = cy;
	/* Batch slots only on columns that are this snapshot's rows. */
	sc->cols = KB_SCHED_FIELD(snap, cols) ? snap->cols : NULL;
	if (sc->cols &&
	    (sc->cols->n != snap->nnodes ||
		(snap->nnodes &&
		    (sc->cols->nodes[0] != snap->nodes[0] ||
			sc->cols->nodes[snap->nnodes - 1] !=
			    snap->nodes[snap->nnodes - 1]))))
		sc->cols = NULL;

	/* PreFilter */
	for (size_t i = 0; i < prof->npoints[P_PREFILTER]; i++) {
		const struct sp_policy *p = prof->points[P_PREFILTER][i].p;
		kb_sched_status_reset(st);
		int r = p->ops->pre_filter(p->state, cy, pod, st);
		if (r == KB_SCHED_SKIP) {
			for (size_t j = 0; j < nf; j++)
				if (prof->points[P_FILTER][j].p == p)
					sc->skip_f[j] = true;
		} else if (r == KB_SCHED_ERROR) {
			rc = error_out(out, p->name, "PreFilter", st);
			goto out;
		} else if (r != KB_SCHED_SUCCESS) {
			hist_status(&h, st, snap->nnodes);
			rc = KB_SCHED_UNSCHEDULABLE;
			goto unschedulable;
		}
	}

	/* Filter, in parts; then the feasible nodes made contiguous. */
	sc->nact_f = 0;
	for (size_t i = 0; i < nf; i++) {
		const struct sp_policy *p = prof->points[P_FILTER][i].p;
		if (!sc->skip_f[i])
			sc->act_f[sc->nact_f++] =
			    (struct active){ .filter = p->ops->filter,
				    .filter_nodes = sc->cols &&
					    KB_SCHED_HAS(p->ops, filter_nodes) ?
					p->ops->filter_nodes :
					NULL,
				    .state = p->state,
				    .p = p };
	}
	sc->ec = eq_use(prof, sc, cy, pod, snap);
	if (sc->ec) {
		int r = eq_filter(sc, &h, &nfeas, out);
		if (r == KB_SCHED_ERROR) {
			rc = r;
			goto out;
		}
		if (r != KB_SCHED_SUCCESS) {
			/* The class cannot hold a verdict: a full pass. */
			sp_eq_drop(prof->eq, sc->ec);
			sc->ec = NULL;
			h.n = 0;
			nfeas = 0;
		}
	}
	feas = sc->ec ? sc->ec->fnodes : sc->feasible;
	tot = sc->total;
	if (sc->ec == NULL) {
		sc->nparts = parts_for(prof, snap->nnodes);
		split(sc, snap->nnodes, sc->nparts);
		pool_run(prof->pool, sc->nparts, filter_part, sc);
	}
	for (int i = 0; sc->ec == NULL && i < sc->nparts; i++) {
		struct part *pt = &sc->parts[i];
		if (pt->err) {
			rc = part_error_out(out, pt);
			goto out;
		}
		for (size_t r = 0; r < pt->h.n; r++)
			hist_add_n(&h, pt->h.v[r].text, pt->h.v[r].count);
		if (nfeas != pt->begin) {
			memmove(sc->feasible + nfeas, sc->feasible + pt->begin,
			    pt->nfeas * sizeof(*sc->feasible));
			memmove(sc->feas_rows + nfeas,
			    sc->feas_rows + pt->begin,
			    pt->nfeas * sizeof(*sc->feas_rows));
		}
		nfeas += pt->nfeas;
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
			int r = p->ops->pre_score(p->state, cy, pod, feas,
			    nfeas, st);
			if (r == KB_SCHED_SKIP) {
				for (size_t j = 0; j < ns; j++)
					if (prof->points[P_SCORE][j].p == p)
						sc->skip_s[j] = true;
			} else if (r != KB_SCHED_SUCCESS) {
				rc = error_out(out, p->name, "PreScore", st);
				goto out;
			}
		}
		sc->nact_s = 0;
		for (size_t i = 0; i < ns; i++) {
			const struct sp_policy *p = prof->points[P_SCORE][i].p;
			if (!sc->skip_s[i])
				sc->act_s[sc->nact_s++] = (struct active){
					.score = p->ops->score,
					.score_nodes = sc->cols &&
						KB_SCHED_HAS(p->ops,
						    score_nodes) ?
					    p->ops->score_nodes :
					    NULL,
					.state = p->state,
					.p = p,
					.row = i,
					.weight =
					    prof->points[P_SCORE][i].weight,
					.normalize = KB_SCHED_HAS(p->ops,
					    normalize_score),
				};
		}
		if (sc->ec) {
			rc = eq_score(sc, nfeas, &tot, out);
			if (rc != KB_SCHED_SUCCESS)
				goto out;
		} else {
			sc->nparts = parts_for(prof, nfeas);
			split(sc, nfeas, sc->nparts);
			pool_run(prof->pool, sc->nparts, score_part, sc);
		}
		for (int i = 0; sc->ec == NULL && i < sc->nparts; i++) {
			if (sc->parts[i].err) {
				rc = part_error_out(out, &sc->parts[i]);
				goto out;
			}
		}
		/* Score parts summed the policies without NormalizeScore
		 * into total; now the others. */
		for (size_t i = 0; i < ns; i++) {
			const struct sp_slot *sl = &prof->points[P_SCORE][i];
			const struct sp_policy *p = sl->p;
			if (sc->skip_s[i] ||
			    !KB_SCHED_HAS(p->ops, normalize_score))
				continue;
			struct kb_sched_node_score *scores =
			    &sc->scores[i * sc->cap];
			kb_sched_status_reset(st);
			if (p->ops->normalize_score(p->state, cy, pod, scores,
				nfeas, st)) {
				rc = error_out(out, p->name, "NormalizeScore",
				    st);
				goto out;
			}
			for (size_t n = 0; n < nfeas; n++) {
				int64_t v = scores[n].score;
				if (v < 0 || v > KB_SCHED_MAX_SCORE) {
					kb_sched_status_reset(st);
					kb_sched_reject(st, KB_SCHED_ERROR,
					    "score %lld of node %s is outside [0, 100]",
					    (long long)v, feas[n]->name);
					rc = error_out(out, p->name, "Score",
					    st);
					goto out;
				}
				sc->total[n] += v * sl->weight;
			}
		}
		/* The highest total; among the nodes that have it, one at
		 * random: count them, then take the k-th (one draw per pod,
		 * not one per tied node as reservoir sampling makes). */
		size_t ties = 1;
		int64_t top = tot[0];
		for (size_t n = 1; n < nfeas; n++) {
			if (tot[n] > top) {
				top = tot[n];
				ties = 1;
			} else if (tot[n] == top) {
				ties++;
			}
		}
		/* The bias of % is below ties / 2^64. */
		size_t k = ties > 1 ? (size_t)(next_rand(rng) % ties) : 0;
		for (best = 0; tot[best] != top || k-- > 0; best++)
			;
	}
	snprintf(out->node, sizeof(out->node), "%s", feas[best]->name);

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
	if (sc) {
		sc->cy = NULL;
		sc->ec = NULL;
	}
	free(h.v);
	kb_sched_cycle_free(cy);
	kb_sched_status_free(st);
	return rc;
}
