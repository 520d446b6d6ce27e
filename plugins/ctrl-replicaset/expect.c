/* plugins/ctrl-replicaset/expect.c — expectations, as client-go's
 * ControllerExpectations but by pod name: a ReplicaSet whose last creates
 * and deletes are not all in the cache yet is left alone. */
#include <stdlib.h>
#include <string.h>

#include "rsc.h"

struct want {
	char *name;
	bool present;
	struct want *next;
};

struct expect {
	char *key;
	int64_t since;
	struct want *wants;
	struct expect *next;
};

static struct expect **find(struct rsc *r, const char *key)
{
	struct expect **pp = &r->exps;
	while (*pp && strcmp((*pp)->key, key))
		pp = &(*pp)->next;
	return pp;
}

static void expect_free(struct expect *e)
{
	while (e->wants) {
		struct want *w = e->wants;
		e->wants = w->next;
		free(w->name);
		free(w);
	}
	free(e->key);
	free(e);
}

void rsc_expect(struct rsc *r, const char *key, const char *name, bool present)
{
	pthread_mutex_lock(&r->mu);
	struct expect **pp = find(r, key);
	if (*pp == NULL) {
		struct expect *e = calloc(1, sizeof(*e));
		if (e && (e->key = strdup(key)) != NULL)
			*pp = e;
		else
			free(e);
	}
	struct want *w = *pp ? calloc(1, sizeof(*w)) : NULL;
	if (w && (w->name = strdup(name)) != NULL) {
		w->present = present;
		w->next = (*pp)->wants;
		(*pp)->wants = w;
		(*pp)->since = ctrl_now_ms();
	} else {
		free(w);
	}
	pthread_mutex_unlock(&r->mu);
}

static bool seen(struct rsc *r, const char *ns, const struct want *w)
{
	kb_body *b = kb_informer_get(r->pods, ns, w->name);
	bool ok;
	if (w->present)
		ok = b != NULL;
	else
		ok = b == NULL || ctrl_deleting(kb_body_obj(b));
	if (b)
		kb_body_unref(b);
	return ok;
}

bool rsc_expectations_met(struct rsc *r, const char *key, const char *ns)
{
	pthread_mutex_lock(&r->mu);
	struct expect **pp = find(r, key);
	bool met = true;
	if (*pp) {
		struct want **wp = &(*pp)->wants;
		while (*wp) {
			if (seen(r, ns, *wp)) {
				struct want *w = *wp;
				*wp = w->next;
				free(w->name);
				free(w);
			} else {
				wp = &(*wp)->next;
			}
		}
		met = (*pp)->wants == NULL ||
		    ctrl_now_ms() - (*pp)->since > r->cfg.expect_timeout_ms;
		if (met) {
			struct expect *e = *pp;
			*pp = e->next;
			expect_free(e);
		}
	}
	pthread_mutex_unlock(&r->mu);
	return met;
}

void rsc_expect_forget(struct rsc *r, const char *key)
{
	pthread_mutex_lock(&r->mu);
	struct expect **pp = find(r, key);
	if (*pp) {
		struct expect *e = *pp;
		*pp = e->next;
		expect_free(e);
	}
	pthread_mutex_unlock(&r->mu);
}

void rsc_expect_free_all(struct rsc *r)
{
	while (r->exps) {
		struct expect *e = r->exps;
		r->exps = e->next;
		expect_free(e);
	}
}
