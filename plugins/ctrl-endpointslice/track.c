/* plugins/ctrl-endpointslice/track.c — the generations of the slices this
 * controller wrote, per service, so that a reconcile waits for its cache to
 * show them (or their deletion) before acting again. */
#include <stdlib.h>
#include <string.h>

#include "esc.h"

struct slice_want {
	char *name;
	int64_t gen; /* -1: expecting its deletion */
	int64_t since;
	struct slice_want *next;
};

struct esc_track {
	char *key;
	struct slice_want *slices;
	struct esc_track *next;
};

static struct esc_track **find(struct esc *e, const char *key)
{
	struct esc_track **pp = &e->track;
	while (*pp && strcmp((*pp)->key, key))
		pp = &(*pp)->next;
	return pp;
}

static void want_free(struct slice_want *w)
{
	free(w->name);
	free(w);
}

static void track_free(struct esc_track *t)
{
	while (t->slices) {
		struct slice_want *w = t->slices;
		t->slices = w->next;
		want_free(w);
	}
	free(t->key);
	free(t);
}

static void set(struct esc *e, const char *key, const char *slice, int64_t gen)
{
	pthread_mutex_lock(&e->mu);
	struct esc_track **pp = find(e, key);
	if (*pp == NULL) {
		struct esc_track *t = calloc(1, sizeof(*t));
		if (t && (t->key = strdup(key)) != NULL)
			*pp = t;
		else
			free(t);
	}
	if (*pp) {
		struct slice_want *w = (*pp)->slices;
		while (w && strcmp(w->name, slice))
			w = w->next;
		if (w == NULL && (w = calloc(1, sizeof(*w))) != NULL) {
			if ((w->name = strdup(slice)) == NULL) {
				free(w);
				w = NULL;
			} else {
				w->next = (*pp)->slices;
				(*pp)->slices = w;
			}
		}
		if (w) {
			w->gen = gen;
			w->since = ctrl_now_ms();
		}
	}
	pthread_mutex_unlock(&e->mu);
}

void esc_track_wrote(struct esc *e, const char *svc_key, const char *slice,
    int64_t generation)
{
	set(e, svc_key, slice, generation);
}

void esc_track_deleted(struct esc *e, const char *svc_key, const char *slice)
{
	set(e, svc_key, slice, -1);
}

void esc_track_gone(struct esc *e, const char *svc_key, const char *slice)
{
	pthread_mutex_lock(&e->mu);
	struct esc_track **pp = find(e, svc_key);
	if (*pp) {
		struct slice_want **wp = &(*pp)->slices;
		while (*wp && strcmp((*wp)->name, slice))
			wp = &(*wp)->next;
		if (*wp) {
			struct slice_want *w = *wp;
			*wp = w->next;
			want_free(w);
		}
	}
	pthread_mutex_unlock(&e->mu);
}

void esc_track_forget(struct esc *e, const char *svc_key)
{
	pthread_mutex_lock(&e->mu);
	struct esc_track **pp = find(e, svc_key);
	if (*pp) {
		struct esc_track *t = *pp;
		*pp = t->next;
		track_free(t);
	}
	pthread_mutex_unlock(&e->mu);
}

bool esc_track_stale(struct esc *e, const char *svc_key, const char *ns)
{
	bool stale = false;
	int64_t now = ctrl_now_ms();
	pthread_mutex_lock(&e->mu);
	struct esc_track **pp = find(e, svc_key);
	struct slice_want **wp = *pp ? &(*pp)->slices : NULL;
	while (wp && *wp) {
		struct slice_want *w = *wp;
		kb_body *b = kb_informer_get(e->slices, ns, w->name);
		int64_t gen = 0;
		if (b)
			kb_mp_int(kb_body_obj(b), "metadata.generation", &gen);
		bool behind = w->gen < 0 ? b != NULL :
					   (b == NULL || gen < w->gen);
		if (b)
			kb_body_unref(b);
		if (behind && now - w->since > e->cfg.stale_timeout_ms)
			behind =
			    false; /* give up waiting: act on what is seen */
		if (!behind && (w->gen < 0 || b == NULL)) {
			/* a deletion seen (or given up on): nothing to keep */
			*wp = w->next;
			want_free(w);
			continue;
		}
		stale |= behind;
		wp = &w->next;
	}
	pthread_mutex_unlock(&e->mu);
	return stale;
}

void esc_track_free_all(struct esc *e)
{
	while (e->track) {
		struct esc_track *t = e->track;
		e->track = t->next;
		track_free(t);
	}
}
