/* tests/unit/ctrl_util.h — shared by the controller tests
 * (test_ctrl_*.c): a host with store-lmdb, the API server and the
 * controllers under test; a client with the plugins' rights; and small
 * helpers to create objects, wait for conditions and play the kubelet
 * (mark pods Ready through pods/status). */
#ifndef KUBUS_TESTS_CTRL_UTIL_H
#define KUBUS_TESTS_CTRL_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kubus/client.h>

#include "harness.h"

struct ct {
	struct kbt_host *h;
	kb_ctx *c;
};

/* `controllers`: YAML list entries for the plugins after the API server. */
static inline bool ct_start(struct ct *t, const char *controllers)
{
	char yaml[4096], err[1024];
	snprintf(yaml, sizeof(yaml),
	    "host:\n"
	    "  log_level: %s\n"
	    "plugins:\n"
	    "  - name: store\n"
	    "    use: store-lmdb\n"
	    "    config: {sync: false}\n"
	    "  - name: apiserver\n"
	    "    use: apiserver\n"
	    "    config: {listen: \"127.0.0.1:0\", kubeconfig: false}\n"
	    "%s",
	    getenv("CT_LOG_LEVEL") ? getenv("CT_LOG_LEVEL") : "warn",
	    controllers);
	t->h = kbt_host_start(yaml, err, sizeof(err));
	if (t->h == NULL) {
		fprintf(stderr, "host: %s\n", err);
		return false;
	}
	const char *groups[] = { "kubus:plugins" };
	t->c = kbt_client(t->h, "tester", "plugin:tester", groups, 1);
	return t->c != NULL;
}

static inline void ct_stop(struct ct *t)
{
	if (t->h)
		kbt_host_stop(t->h);
	t->h = NULL;
}

static inline void ct_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Create from a kb_mp_body format; the created object (free with
 * kb_msg_free) or NULL. */
static inline kb_msg *ct_create(struct ct *t, const struct kb_gvr *r,
    const char *ns, kb_body *obj)
{
	kb_msg *rep = NULL;
	int rc = kb_api_create(t->c, r, ns, obj, &rep);
	if (rc) {
		const char *why = "";
		if (rep)
			kb_msg_err(rep, &why);
		fprintf(stderr, "create %s: %s: %s\n", r->resource,
		    kb_err_reason(rc), why);
		kb_msg_free(rep);
		return NULL;
	}
	return rep;
}

/* Items of a list, or -1. fn (may be NULL) is called for each. */
static inline int ct_list(struct ct *t, const struct kb_gvr *r, const char *ns,
    const char *sel, void (*fn)(void *arg, const msgpack_object *o), void *arg)
{
	kb_msg *rep = NULL;
	if (kb_api_list(t->c, r, ns, sel, NULL, &rep)) {
		kb_msg_free(rep);
		return -1;
	}
	const msgpack_object *items = kb_mp_key(kb_msg_body(rep), "items");
	int n = items && items->type == MSGPACK_OBJECT_ARRAY ?
	    (int)items->via.array.size :
	    0;
	for (int i = 0; fn && i < n; i++)
		fn(arg, &items->via.array.ptr[i]);
	kb_msg_free(rep);
	return n;
}

/* An integer field of one object; -1 when absent or not found. */
static inline int64_t ct_get_int(struct ct *t, const struct kb_gvr *r,
    const char *ns, const char *name, const char *path)
{
	kb_msg *rep = NULL;
	int64_t v = -1;
	if (kb_api_get(t->c, r, ns, name, &rep) == 0)
		kb_mp_int(kb_msg_body(rep), path, &v);
	kb_msg_free(rep);
	return v;
}

static inline bool ct_exists(struct ct *t, const struct kb_gvr *r,
    const char *ns, const char *name)
{
	kb_msg *rep = NULL;
	int rc = kb_api_get(t->c, r, ns, name, &rep);
	kb_msg_free(rep);
	return rc == 0;
}

/* Poll cond every 50 ms for up to ms. */
#define CT_WAIT(ms, cond)                                                      \
	({                                                                     \
		bool ok_ = false;                                              \
		for (int w_ = 0; w_ < (ms) / 50; w_++) {                       \
			if (cond) {                                            \
				ok_ = true;                                    \
				break;                                         \
			}                                                      \
			ct_sleep_ms(50);                                       \
		}                                                              \
		ok_ || (cond);                                                 \
	})

/* What a kubelet would report for a running, ready pod. */
static inline void ct_ready_one(void *arg, const msgpack_object *pod)
{
	struct ct *t = arg;
	if (kb_mp_streq(pod, "status.phase", "Running"))
		return;
	char now[40];
	time_t s = time(NULL);
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	/* the pod with its status replaced */
	bool has = kb_mp_key(pod, "status") != NULL;
	msgpack_pack_map(&pk, pod->via.map.size + !has);
	if (!has)
		kb_mp_pack(&pk, "s:{s:s, s:[{s:s, s:s, s:s}]}", "status",
		    "phase", "Running", "conditions", "type", "Ready", "status",
		    "True", "lastTransitionTime", now);
	for (uint32_t i = 0; i < pod->via.map.size; i++) {
		msgpack_pack_object(&pk, pod->via.map.ptr[i].key);
		if (kb_mp_is(&pod->via.map.ptr[i].key, "status"))
			kb_mp_pack(&pk, "{s:s, s:[{s:s, s:s, s:s}]}", "phase",
			    "Running", "conditions", "type", "Ready", "status",
			    "True", "lastTransitionTime", now);
		else
			msgpack_pack_object(&pk, pod->via.map.ptr[i].val);
	}
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	char *ns = kb_mp_strdup(pod, "metadata.namespace");
	char *name = kb_mp_strdup(pod, "metadata.name");
	kb_api_update(t->c, &KB_GVR_PODS, ns, name, "status", b, NULL);
	free(ns);
	free(name);
}

/* Mark every pod matching sel Ready; the number of pods seen. */
static inline int ct_ready_pods(struct ct *t, const char *ns, const char *sel)
{
	return ct_list(t, &KB_GVR_PODS, ns, sel, ct_ready_one, t);
}

#endif
