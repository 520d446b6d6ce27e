/* sdk/src/leader.c — leader election on a coordination.k8s.io/v1 Lease, as
 * client-go's leaderelection with a LeaseLock.
 *
 * The Lease's spec is the record: holderIdentity, leaseDurationSeconds,
 * acquireTime, renewTime (RFC 3339 with microseconds) and
 * leaseTransitions. Every write is an update carrying the resourceVersion
 * that was read (or a create when there is no Lease yet), so of two
 * candidates racing for a free or expired lease one gets a Conflict (or
 * AlreadyExists) and loses: never both.
 *
 * The leader renews every lease_ms/3; when it cannot renew for 2/3 of
 * lease_ms, or sees another holder, it calls stopped() and becomes a
 * candidate again. A candidate polls every lease_ms/5 (with jitter) and
 * takes the lease over when its renewTime + duration has passed and, as
 * client-go does against clock skew, the record has also not changed for
 * a whole duration by this candidate's own monotonic clock.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_int.h"

struct kb_leader {
	kb_ctx *ctx;
	char *ns, *name, *identity;
	int64_t lease_ms;
	void (*started)(void *arg);
	void (*stopped)(void *arg);
	void *arg;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop, running;
	pthread_t thread;
	atomic_bool leader;

	/* the thread's own */
	char *observed;      /* holder|renewTime|resourceVersion last seen */
	int64_t observed_at; /* monotonic ms when it last changed */
	int64_t renewed_at;  /* monotonic ms of the last successful write */
	uint64_t rnd;
};

/* --- times --------------------------------------------------------------------------- */

static void micro_time(char *buf, size_t len, int64_t wall_ms)
{
	time_t s = (time_t)(wall_ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%06dZ", (int)(wall_ms % 1000) * 1000);
}

/* RFC 3339 to wall ms; -1. */
static int64_t parse_time(const char *s, size_t len)
{
	int64_t ms;
	return kb_time_parse(s, len, &ms) ? ms : -1;
}

/* --- the record ---------------------------------------------------------------------- */

struct record {
	char holder[256];
	int64_t renew_ms; /* wall; -1 when absent */
	int64_t duration_s;
	int64_t transitions;
	char acquire[64];
	char rv[32];
};

static void str_at(const msgpack_object *o, const char *path, char *buf,
    size_t len)
{
	const char *s;
	size_t n;
	buf[0] = '\0';
	if (kb_mp_str(o, path, &s, &n) && n < len) {
		memcpy(buf, s, n);
		buf[n] = '\0';
	}
}

static void read_record(const msgpack_object *lease, struct record *r)
{
	const char *s;
	size_t n;
	memset(r, 0, sizeof(*r));
	str_at(lease, "spec.holderIdentity", r->holder, sizeof(r->holder));
	str_at(lease, "spec.acquireTime", r->acquire, sizeof(r->acquire));
	str_at(lease, "metadata.resourceVersion", r->rv, sizeof(r->rv));
	r->renew_ms =
	    kb_mp_str(lease, "spec.renewTime", &s, &n) ? parse_time(s, n) : -1;
	kb_mp_int(lease, "spec.leaseDurationSeconds", &r->duration_s);
	kb_mp_int(lease, "spec.leaseTransitions", &r->transitions);
}

/* The lease's duration in ms. The field holds whole seconds: when it is
 * what a candidate configured like us writes, our finer value is the one
 * its holder renews by. */
static int64_t duration_ms(const struct kb_leader *l, const struct record *r)
{
	int64_t mine = (l->lease_ms + 999) / 1000;
	if (r->duration_s <= 0 || r->duration_s == mine)
		return l->lease_ms;
	return r->duration_s * 1000;
}

static void observe(struct kb_leader *l, const struct record *r)
{
	char key[400];
	snprintf(key, sizeof(key), "%s|%" PRId64 "|%s", r->holder, r->renew_ms,
	    r->rv);
	if (l->observed && strcmp(l->observed, key) == 0)
		return;
	free(l->observed);
	l->observed = strdup(key);
	l->observed_at = kb_mono_ms();
}

/* The spec fields that make the election record. */
static bool record_field(const msgpack_object *key)
{
	static const char *const fields[] = { "holderIdentity",
		"leaseDurationSeconds", "acquireTime", "renewTime",
		"leaseTransitions" };
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (kb_mp_is(key, fields[i]))
			return true;
	return false;
}

/* The Lease as read (NULL: a new one), with the record in its spec:
 * metadata (and with it the resourceVersion, the update's precondition)
 * and any other spec field (preferredHolder, …) stay as they were. */
static kb_body *lease_with(const struct kb_leader *l,
    const msgpack_object *lease, const char *holder, int64_t duration_s,
    const char *acquire, const char *renew, int64_t transitions)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (lease && lease->type != MSGPACK_OBJECT_MAP)
		lease = NULL;
	const msgpack_object *spec = lease ? kb_mp_key(lease, "spec") : NULL;
	if (spec && spec->type != MSGPACK_OBJECT_MAP)
		spec = NULL;
	if (lease == NULL) {
		msgpack_pack_map(&pk, 4);
		kb_mp_pack(&pk, "s:s, s:s, s:{s:s, s:s}", "apiVersion",
		    "coordination.k8s.io/v1", "kind", "Lease", "metadata",
		    "name", l->name, "namespace", l->ns);
	} else {
		bool had_spec = kb_mp_key(lease, "spec") != NULL;
		msgpack_pack_map(&pk, lease->via.map.size + !had_spec);
		for (uint32_t i = 0; i < lease->via.map.size; i++) {
			const msgpack_object_kv *kv = &lease->via.map.ptr[i];
			if (kb_mp_is(&kv->key, "spec"))
				continue;
			msgpack_pack_object(&pk, kv->key);
			msgpack_pack_object(&pk, kv->val);
		}
	}
	uint32_t others = 0;
	for (uint32_t i = 0; spec && i < spec->via.map.size; i++)
		others += !record_field(&spec->via.map.ptr[i].key);
	kb_mp_pack_cstr(&pk, "spec");
	msgpack_pack_map(&pk, 5 + others);
	kb_mp_pack(&pk, "s:s, s:I, s:s, s:s, s:I", "holderIdentity", holder,
	    "leaseDurationSeconds", duration_s, "acquireTime", acquire,
	    "renewTime", renew, "leaseTransitions", transitions);
	for (uint32_t i = 0; spec && i < spec->via.map.size; i++) {
		const msgpack_object_kv *kv = &spec->via.map.ptr[i];
		if (!record_field(&kv->key)) {
			msgpack_pack_object(&pk, kv->key);
			msgpack_pack_object(&pk, kv->val);
		}
	}
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	return b;
}

/* get, create or update the Lease (taking `body`), bounded in time so that
 * a hung API server cannot keep a leader past its renew deadline. */
static int lease_call(struct kb_leader *l, const char *op, kb_body *body,
    kb_msg **rep)
{
	struct kb_api_args a = { .r = &KB_GVR_LEASES,
		.ns = l->ns,
		.name = strcmp(op, "create") ? l->name : NULL,
		.body_key = "object",
		.body = body };
	int timeout = (int)(l->lease_ms / 3 > 100 ? l->lease_ms / 3 : 100);
	int rc = kb_api_call(l->ctx, op, &a, timeout, rep);
	if (body)
		kb_body_unref(body);
	return rc;
}

enum attempt {
	T_OK,
	T_OTHER,
	T_ERR
};

/* One try at acquiring or renewing the lease. */
static enum attempt try_lease(struct kb_leader *l)
{
	char now[64];
	int64_t secs = (l->lease_ms + 999) / 1000;
	micro_time(now, sizeof(now), kb_wall_ms());
	kb_msg *rep = NULL;
	int rc = lease_call(l, "get", NULL, &rep);
	if (rc == KB_ENOTFOUND) {
		kb_msg_free(rep);
		kb_body *b =
		    lease_with(l, NULL, l->identity, secs, now, now, 0);
		rc = b ? lease_call(l, "create", b, NULL) : KB_ENOMEM;
		return rc == 0 ? T_OK : rc == KB_EEXIST ? T_OTHER : T_ERR;
	}
	if (rc != 0) {
		kb_msg_free(rep);
		return T_ERR;
	}
	const msgpack_object *lease = kb_msg_body(rep);
	struct record r;
	read_record(lease, &r);
	observe(l, &r);
	bool ours = strcmp(r.holder, l->identity) == 0;
	if (r.holder[0] && !ours) {
		int64_t dur = duration_ms(l, &r);
		bool expired =
		    (r.renew_ms < 0 || kb_wall_ms() > r.renew_ms + dur) &&
		    kb_mono_ms() - l->observed_at > dur;
		if (!expired) {
			kb_msg_free(rep);
			return T_OTHER;
		}
	}
	kb_body *b = lease_with(l, lease, l->identity, secs,
	    ours ? r.acquire : now, now,
	    ours ? r.transitions : r.transitions + 1);
	kb_msg_free(rep);
	if (b == NULL)
		return T_ERR;
	rc = lease_call(l, "update", b, NULL);
	if (rc == 0)
		return T_OK;
	/* A Conflict: someone wrote since we read. Whether they took it the
	 * next read says; until then this is only a failed try. */
	return T_ERR;
}

/* Give the lease up, as client-go's ReleaseOnCancel: empty holder. */
static void release(struct kb_leader *l)
{
	kb_msg *rep = NULL;
	if (lease_call(l, "get", NULL, &rep) != 0) {
		kb_msg_free(rep);
		return;
	}
	const msgpack_object *lease = kb_msg_body(rep);
	struct record r;
	read_record(lease, &r);
	if (strcmp(r.holder, l->identity) == 0) {
		char now[64];
		micro_time(now, sizeof(now), kb_wall_ms());
		kb_body *b =
		    lease_with(l, lease, "", 1, now, now, r.transitions);
		if (b)
			lease_call(l, "update", b, NULL);
	}
	kb_msg_free(rep);
}

/* --- the elector's thread ------------------------------------------------------------------ */

static void set_leader(struct kb_leader *l, bool on)
{
	atomic_store(&l->leader, on);
	kb_info(l->ctx, on ? "became the leader" : "stopped leading",
	    "lease=%s/%s identity=\"%s\"", l->ns, l->name, l->identity);
	if (on && l->started)
		l->started(l->arg);
	else if (!on && l->stopped)
		l->stopped(l->arg);
}

static int64_t jitter(struct kb_leader *l, int64_t ms)
{
	l->rnd ^= l->rnd << 13;
	l->rnd ^= l->rnd >> 7;
	l->rnd ^= l->rnd << 17;
	return ms + (int64_t)(l->rnd % (uint64_t)(ms / 5 + 1));
}

static void *run(void *arg)
{
	struct kb_leader *l = arg;
	int64_t renew_every = l->lease_ms / 3, retry = l->lease_ms / 5,
		retry_fast = l->lease_ms / 10, deadline = l->lease_ms * 2 / 3;
	if (retry_fast < 5)
		retry_fast = 5;
	for (;;) {
		/* A renewal counts from before its renewTime was stamped:
		 * the others count from that, too. */
		int64_t tried = kb_mono_ms();
		enum attempt a = try_lease(l);
		int64_t now = kb_mono_ms(), wait;
		bool leading = atomic_load(&l->leader);
		if (a == T_OK) {
			l->renewed_at = tried;
			if (!leading)
				set_leader(l, true);
			wait = renew_every;
		} else if (leading &&
		    (a == T_OTHER || now - l->renewed_at >= deadline)) {
			set_leader(l, false);
			wait = jitter(l, retry);
		} else {
			wait = leading ? retry_fast : jitter(l, retry);
		}
		/* Sleep no later than the renew deadline while leading. */
		if (atomic_load(&l->leader) &&
		    l->renewed_at + deadline < now + wait)
			wait = l->renewed_at + deadline - now > 0 ?
			    l->renewed_at + deadline - now :
			    0;
		pthread_mutex_lock(&l->mu);
		int64_t until = kb_mono_ms() + wait;
		while (!l->stop && kb_mono_ms() < until)
			kb_cond_wait_until(&l->cv, &l->mu, until);
		bool stop = l->stop;
		pthread_mutex_unlock(&l->mu);
		if (stop)
			break;
	}
	if (atomic_load(&l->leader)) {
		/* Stop acting first, then let the others in. */
		set_leader(l, false);
		release(l);
	}
	return NULL;
}

/* --- the API -------------------------------------------------------------------------------- */

struct kb_leader *kb_leader_new(kb_ctx *ctx, const struct kb_leader_opts *o)
{
	if (ctx == NULL || o == NULL || o->name == NULL || !*o->name)
		return NULL;
	struct kb_leader *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return NULL;
	l->ctx = ctx;
	l->ns = strdup(o->ns && *o->ns ? o->ns : "kube-system");
	l->name = strdup(o->name);
	if (o->identity && *o->identity) {
		l->identity = strdup(o->identity);
	} else {
		const char *h = kb_host_name(ctx), *i = kb_instance(ctx);
		size_t n = strlen(h ? h : "") + strlen(i ? i : "") + 2;
		if ((l->identity = malloc(n)) != NULL)
			snprintf(l->identity, n, "%s_%s", h ? h : "",
			    i ? i : "");
	}
	l->lease_ms = o->lease_ms > 0 ? o->lease_ms : 15000;
	l->started = o->started;
	l->stopped = o->stopped;
	l->arg = o->arg;
	if (l->ns == NULL || l->name == NULL || l->identity == NULL) {
		free(l->ns);
		free(l->name);
		free(l->identity);
		free(l);
		return NULL;
	}
	pthread_mutex_init(&l->mu, NULL);
	kb_cond_init_mono(&l->cv);
	atomic_init(&l->leader, false);
	l->rnd = (uint64_t)kb_mono_ms() * 0x9e3779b97f4a7c15ull ^ (uintptr_t)l;
	if (l->rnd == 0)
		l->rnd = 1;
	return l;
}

int kb_leader_start(struct kb_leader *l)
{
	pthread_mutex_lock(&l->mu);
	int rc = 0;
	if (l->running || l->stop)
		rc = KB_ESTATE;
	else if (pthread_create(&l->thread, NULL, run, l) != 0)
		rc = KB_ESYS;
	else
		l->running = true;
	pthread_mutex_unlock(&l->mu);
	return rc;
}

bool kb_leader_is_leader(struct kb_leader *l)
{
	return atomic_load(&l->leader);
}

void kb_leader_free(struct kb_leader *l)
{
	if (l == NULL)
		return;
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	bool running = l->running;
	pthread_cond_broadcast(&l->cv);
	pthread_mutex_unlock(&l->mu);
	if (running)
		pthread_join(l->thread, NULL);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->mu);
	free(l->observed);
	free(l->ns);
	free(l->name);
	free(l->identity);
	free(l);
}
