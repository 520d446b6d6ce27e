/* plugins/store-etcd/watch.c — store watches on etcd watch streams.
 *
 * One thread drives a curl multi handle holding one etcd watch stream
 * (POST /v3/watch, newline-separated JSON messages) per store watch, and
 * publishes each etcd response's events as one publication on the
 * watcher's topic.
 *
 * Exactly-once delivery across broken streams: each watch remembers the
 * last revision it published (`last`) and drops events at or below it.
 * The first stream starts right after it (etcd then serves a watch from
 * "now" without replaying history). A resumed stream asks etcd to start AT
 * `last`, one revision early, on purpose: etcd cancels a watch whose start
 * is *below* its compact revision, while resuming *at* the compact
 * revision could miss a delete there (compaction drops the tombstones at
 * that revision), so the off-by-one makes etcd's check the right one. For
 * the same reason ec_watch_add() checks a watch from an explicit revision
 * against the compaction first. etcd never splits one revision's events
 * across two responses, so `last` is always a complete revision.
 */
#include "etcd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES (256u * 1024 * 1024)
#define RECONNECT_MAX_MS 1000

struct ec_watch {
	struct ec_watch *next;
	struct ec_store *s;
	int64_t id;
	char *topic;
	unsigned char *prefix;
	size_t pn;
	bool prev;
	int64_t last;      /* last revision published */
	int64_t reply_rev; /* `rev` for the watch reply (0: the stream's) */
	CURL *h;           /* the current stream, NULL between streams */
	char *body;        /* its request */
	char *buf;         /* a partial line */
	size_t len, cap;
	void *token;       /* the pending watch request, until created */
	int64_t token_dl;
	int ep;            /* endpoint of the current stream */
	int fails;
	int64_t retry_at;
	bool created;
	bool dead;         /* drop at the next turn of the loop */
	bool resumed;      /* not the first stream: start at `last` */
};

enum { CMD_ADD, CMD_DEL };

struct ec_wcmd {
	struct ec_wcmd *next;
	int kind;
	struct ec_watch *w; /* CMD_ADD */
	int64_t id;         /* CMD_DEL */
	void *token;        /* CMD_DEL */
};

static void reply_err(struct ec_store *s, void *token, int code,
    const char *msg)
{
	struct ec_out o;
	ec_out_init(&o);
	ec_out_err(&o, code, "%s", msg);
	s->reply(token, &o);
	ec_out_destroy(&o);
}

static void watch_free(struct ec_watch *w)
{
	if (w->h) {
		curl_multi_remove_handle(w->s->multi, w->h);
		curl_easy_cleanup(w->h);
	}
	if (w->token)
		reply_err(w->s, w->token, KB_EUNAVAILABLE,
		    "store-etcd is stopping");
	free(w->topic);
	free(w->prefix);
	free(w->body);
	free(w->buf);
	free(w);
}

static void publish_error(struct ec_watch *w, const char *code,
    const char *msg)
{
	struct ec_out o;
	ec_out_init(&o);
	msgpack_pack_map(&o.pk, 2);
	ec_mp_str(&o.pk, "watch_id");
	msgpack_pack_int64(&o.pk, w->id);
	ec_mp_str(&o.pk, "error");
	msgpack_pack_map(&o.pk, 2);
	ec_mp_str(&o.pk, "code");
	ec_mp_str(&o.pk, code);
	ec_mp_str(&o.pk, "message");
	ec_mp_str(&o.pk, msg);
	w->s->publish(w->s->hook_arg, w->topic, &o.sb);
	ec_out_destroy(&o);
}

static void on_events(struct ec_watch *w, const json_t *evs)
{
	size_t i, n = 0;
	const json_t *e;
	int64_t top = w->last;
	json_array_foreach(evs, i, e) {
		int64_t r = ec_jint(json_object_get(e, "kv"), "mod_revision");
		if (r > w->last)
			n++;
		if (r > top)
			top = r;
	}
	if (n == 0)
		return;
	struct ec_out o;
	ec_out_init(&o);
	msgpack_pack_map(&o.pk, 2);
	ec_mp_str(&o.pk, "watch_id");
	msgpack_pack_int64(&o.pk, w->id);
	ec_mp_str(&o.pk, "events");
	msgpack_pack_array(&o.pk, n);
	json_array_foreach(evs, i, e) {
		const json_t *kv = json_object_get(e, "kv");
		if (ec_jint(kv, "mod_revision") <= w->last)
			continue;
		const char *t = json_string_value(json_object_get(e, "type"));
		bool del = t && !strcmp(t, "DELETE");
		msgpack_pack_map(&o.pk, w->prev ? 3 : 2);
		ec_mp_str(&o.pk, "type");
		ec_mp_str(&o.pk, del ? "delete" : "put");
		ec_mp_str(&o.pk, "kv");
		ec_pack_kv(&o.pk, kv, !del);
		if (w->prev) {
			const json_t *p = json_object_get(e, "prev_kv");
			ec_mp_str(&o.pk, "prev");
			if (p)
				ec_pack_kv(&o.pk, p, true);
			else
				msgpack_pack_nil(&o.pk);
		}
	}
	w->last = top;
	w->s->publish(w->s->hook_arg, w->topic, &o.sb);
	ec_out_destroy(&o);
}

/* One message of the stream. Returns false to end the stream. */
static bool on_message(struct ec_watch *w, const char *line, size_t n)
{
	json_error_t je;
	json_t *j = json_loadb(line, n, 0, &je);
	if (!j)
		return false;
	const json_t *r = json_object_get(j, "result");
	if (!r) {
		/* {"error": …}: the member failed; resume elsewhere. */
		json_decref(j);
		return false;
	}
	bool keep = true;
	if (json_is_true(json_object_get(r, "canceled"))) {
		int64_t comp = ec_jint(r, "compact_revision");
		if (comp > 0) {
			char m[160];
			snprintf(m, sizeof m, "watch from revision %lld: "
			    "compacted at %lld", (long long)w->last + 1,
			    (long long)comp);
			if (w->token) {
				struct ec_out o;
				ec_out_init(&o);
				ec_out_err(&o, KB_EEXPIRED, "%s", m);
				o.has_body = true;
				msgpack_pack_map(&o.pk, 1);
				ec_mp_str(&o.pk, "compact_rev");
				msgpack_pack_int64(&o.pk, comp);
				w->s->reply(w->token, &o);
				ec_out_destroy(&o);
				w->token = NULL;
			} else {
				publish_error(w, "Expired", m);
			}
			w->dead = true;
		}
		keep = false;
	} else if (json_is_true(json_object_get(r, "created"))) {
		w->created = true;
		w->fails = 0;
		if (w->token) {
			struct ec_out o;
			ec_out_init(&o);
			o.has_body = true;
			msgpack_pack_map(&o.pk, 2);
			ec_mp_str(&o.pk, "watch_id");
			msgpack_pack_int64(&o.pk, w->id);
			ec_mp_str(&o.pk, "rev");
			msgpack_pack_int64(&o.pk, w->reply_rev ? w->reply_rev :
			    ec_jint(json_object_get(r, "header"), "revision"));
			w->s->reply(w->token, &o);
			ec_out_destroy(&o);
			w->token = NULL;
		}
	}
	const json_t *evs = json_object_get(r, "events");
	if (keep && json_array_size(evs) > 0)
		on_events(w, evs);
	json_decref(j);
	return keep;
}

static size_t on_stream(char *p, size_t sz, size_t n, void *arg)
{
	struct ec_watch *w = arg;
	size_t len = sz * n;
	if (w->dead)
		return 0;
	if (w->len + len + 1 > w->cap) {
		size_t cap = w->cap ? w->cap : 4096;
		while (cap < w->len + len + 1)
			cap *= 2;
		if (cap > LINE_MAX_BYTES)
			return 0;
		char *b = realloc(w->buf, cap);
		if (!b)
			return 0;
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, p, len);
	w->len += len;
	size_t off = 0;
	for (;;) {
		char *nl = memchr(w->buf + off, '\n', w->len - off);
		if (!nl)
			break;
		size_t ln = (size_t)(nl - (w->buf + off));
		if (ln > 0 && !on_message(w, w->buf + off, ln)) {
			w->len = 0;
			return 0; /* end this stream */
		}
		off += ln + 1;
	}
	memmove(w->buf, w->buf + off, w->len - off);
	w->len -= off;
	return len;
}

static json_t *range_end(const unsigned char *p, size_t n)
{
	if (n == 0)
		return ec_jb64("", 1);
	unsigned char *e = malloc(n);
	if (!e)
		return NULL;
	memcpy(e, p, n);
	while (n > 0 && e[n - 1] == 0xff)
		n--;
	json_t *j;
	if (n == 0) {
		j = ec_jb64("", 1);
	} else {
		e[n - 1]++;
		j = ec_jb64(e, n);
	}
	free(e);
	return j;
}

static int stream_open(struct ec_watch *w)
{
	struct ec_store *s = w->s;
	char rev[32];
	int64_t from = w->resumed ? w->last : w->last + 1;
	snprintf(rev, sizeof rev, "%lld", (long long)(from > 0 ? from : 1));
	json_t *j = json_pack("{s:{s:o, s:o, s:s, s:b}}", "create_request",
	    "key", w->pn ? ec_jb64(w->prefix, w->pn) : ec_jb64("", 1),
	    "range_end", range_end(w->prefix, w->pn), "start_revision", rev,
	    "prev_kv", w->prev);
	free(w->body);
	w->body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!w->body)
		return KB_ENOMEM;
	CURL *h = curl_easy_init();
	if (!h)
		return KB_ENOMEM;
	w->ep = atomic_load(&s->client.cur) % s->client.neps;
	char url[512];
	snprintf(url, sizeof url, "%s/v3/watch", s->client.eps[w->ep]);
	ec_client_setopts(&s->client, h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, w->body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(h, CURLOPT_PRIVATE, w);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 0L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 5L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 2L);
	/* A stream per watch: don't queue behind another on one connection. */
	curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
	if (curl_multi_add_handle(s->multi, h) != CURLM_OK) {
		curl_easy_cleanup(h);
		return KB_ENOMEM;
	}
	w->h = h;
	w->len = 0;
	return 0;
}

/* The stream ended (error, EOF, or we ended it). */
static void stream_done(struct ec_watch *w, CURLcode cr)
{
	struct ec_store *s = w->s;
	curl_multi_remove_handle(s->multi, w->h);
	curl_easy_cleanup(w->h);
	w->h = NULL;
	if (w->dead)
		return;
	/* Move off this member for new streams and calls. */
	int exp = w->ep;
	atomic_compare_exchange_strong(&s->client.cur, &exp,
	    (w->ep + 1) % s->client.neps);
	w->fails++;
	int64_t now = ec_now_ms();
	if (w->token && now >= w->token_dl) {
		char m[200];
		snprintf(m, sizeof m, "cannot open an etcd watch stream: %s",
		    curl_easy_strerror(cr));
		reply_err(s, w->token, KB_EUNAVAILABLE, m);
		w->token = NULL;
		w->dead = true;
		return;
	}
	int delay = w->fails <= 1 ? 0 : 50 * (w->fails - 1);
	w->retry_at = now + (delay > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : delay);
	w->created = false;
	w->resumed = true;
}

static void run_cmds(struct ec_store *s)
{
	pthread_mutex_lock(&s->wmu);
	struct ec_wcmd *c = s->cmds;
	s->cmds = NULL;
	pthread_mutex_unlock(&s->wmu);
	/* Commands were pushed at the head: replay them oldest first. */
	struct ec_wcmd *rev = NULL;
	while (c) {
		struct ec_wcmd *n = c->next;
		c->next = rev;
		rev = c;
		c = n;
	}
	for (c = rev; c; c = rev) {
		rev = c->next;
		if (c->kind == CMD_ADD) {
			c->w->next = s->watches;
			s->watches = c->w;
		} else {
			bool found = false;
			for (struct ec_watch **pp = &s->watches; *pp;
			    pp = &(*pp)->next) {
				if ((*pp)->id == c->id) {
					struct ec_watch *w = *pp;
					*pp = w->next;
					watch_free(w);
					found = true;
					break;
				}
			}
			if (!found) {
				/* store.h: an unknown watch is NotFound. */
				reply_err(s, c->token, KB_ENOTFOUND, "no such watch");
				free(c);
				continue;
			}
			struct ec_out o;
			ec_out_init(&o);
			o.has_body = true;
			msgpack_pack_map(&o.pk, 0);
			s->reply(c->token, &o);
			ec_out_destroy(&o);
		}
		free(c);
	}
}

static void *watch_main(void *arg)
{
	struct ec_store *s = arg;
	while (!atomic_load(&s->wstop)) {
		run_cmds(s);
		int64_t now = ec_now_ms(), next = now + 500;
		for (struct ec_watch **pp = &s->watches; *pp;) {
			struct ec_watch *w = *pp;
			if (w->dead && !w->h) {
				*pp = w->next;
				watch_free(w);
				continue;
			}
			if (!w->h && !w->dead) {
				if (w->retry_at <= now) {
					if (stream_open(w) != 0)
						w->retry_at = now + 100;
				}
				if (!w->h && w->retry_at < next)
					next = w->retry_at;
			}
			pp = &w->next;
		}
		int running;
		curl_multi_perform(s->multi, &running);
		CURLMsg *m;
		int q;
		while ((m = curl_multi_info_read(s->multi, &q))) {
			if (m->msg != CURLMSG_DONE)
				continue;
			struct ec_watch *w = NULL;
			CURLcode cr = m->data.result;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE,
			    (char **)&w);
			if (w)
				stream_done(w, cr);
		}
		int wait = (int)(next - ec_now_ms());
		if (wait < 0)
			wait = 0;
		curl_multi_poll(s->multi, NULL, 0, wait, NULL);
	}
	run_cmds(s);
	while (s->watches) {
		struct ec_watch *w = s->watches;
		s->watches = w->next;
		watch_free(w);
	}
	return NULL;
}

int ec_watch_start(struct ec_store *s)
{
	s->multi = curl_multi_init();
	if (!s->multi)
		return KB_ENOMEM;
	pthread_mutex_init(&s->wmu, NULL);
	atomic_init(&s->wstop, false);
	s->next_watch_id = 0;
	if (pthread_create(&s->watch_thr, NULL, watch_main, s) != 0) {
		curl_multi_cleanup(s->multi);
		s->multi = NULL;
		pthread_mutex_destroy(&s->wmu);
		return KB_ESYS;
	}
	s->watch_running = true;
	return 0;
}

void ec_watch_stop(struct ec_store *s)
{
	if (!s->watch_running)
		return;
	atomic_store(&s->wstop, true);
	curl_multi_wakeup(s->multi);
	pthread_join(s->watch_thr, NULL);
	s->watch_running = false;
	/* Commands queued after the thread's last turn. */
	struct ec_wcmd *c = s->cmds;
	s->cmds = NULL;
	while (c) {
		struct ec_wcmd *n = c->next;
		if (c->kind == CMD_ADD)
			watch_free(c->w);
		else
			reply_err(s, c->token, KB_EUNAVAILABLE,
			    "store-etcd is stopping");
		free(c);
		c = n;
	}
	curl_multi_cleanup(s->multi);
	s->multi = NULL;
	pthread_mutex_destroy(&s->wmu);
}

static void push_cmd(struct ec_store *s, struct ec_wcmd *c)
{
	pthread_mutex_lock(&s->wmu);
	c->next = s->cmds;
	s->cmds = c;
	pthread_mutex_unlock(&s->wmu);
	curl_multi_wakeup(s->multi);
}

void ec_watch_add(struct ec_store *s, struct ec_conn *cn,
    const msgpack_object *req, void *token, int64_t dl)
{
	struct ec_out o;
	ec_out_init(&o);
	const msgpack_object *pfx = ec_mp_key(req, "prefix");
	const msgpack_object *topic = ec_mp_key(req, "topic");
	int64_t rev = 0;
	bool prev = false;
	const msgpack_object *rv = ec_mp_key(req, "rev");
	const msgpack_object *pv = ec_mp_key(req, "prev");
	if (!req || req->type != MSGPACK_OBJECT_MAP) {
		ec_out_err(&o, KB_EINVAL, "watch: expected a map body");
	} else if (!pfx || pfx->type != MSGPACK_OBJECT_STR) {
		ec_out_err(&o, KB_EINVAL, "`prefix`: expected a string");
	} else if (!topic || topic->type != MSGPACK_OBJECT_STR ||
	    topic->via.str.size == 0) {
		ec_out_err(&o, KB_EINVAL, "`topic`: expected a non-empty string");
	} else if (rv && rv->type != MSGPACK_OBJECT_NIL &&
	    (!ec_mp_int(req, "rev", &rev) || rev < 0)) {
		ec_out_err(&o, KB_EINVAL, "`rev`: expected a non-negative "
		    "integer");
	} else if (pv && pv->type != MSGPACK_OBJECT_NIL &&
	    !ec_mp_bool(req, "prev", &prev)) {
		ec_out_err(&o, KB_EINVAL, "`prev`: expected a boolean");
	}
	if (o.code) {
		s->reply(token, &o);
		ec_out_destroy(&o);
		return;
	}
	int64_t cur = 0;
	if (rev == 0) {
		/* "From the next write on" must mean after a revision we
		 * name, so that a reconnect can resume from it. */
		if (ec_current_rev(s, cn, dl, &cur, &o) != 0) {
			s->reply(token, &o);
			ec_out_destroy(&o);
			return;
		}
	} else {
		int64_t comp = 0;
		int rc = ec_check_compacted(s, cn, rev, dl, &comp, &o);
		if (rc == 0 && comp > 0) {
			ec_out_err(&o, KB_EEXPIRED, "watch from revision %lld: "
			    "compacted at %lld", (long long)rev,
			    (long long)comp);
			o.has_body = true;
			msgpack_pack_map(&o.pk, 1);
			ec_mp_str(&o.pk, "compact_rev");
			msgpack_pack_int64(&o.pk, comp);
		}
		if (o.code) {
			s->reply(token, &o);
			ec_out_destroy(&o);
			return;
		}
	}
	ec_out_destroy(&o);
	struct ec_watch *w = calloc(1, sizeof *w);
	struct ec_wcmd *c = calloc(1, sizeof *c);
	if (w) {
		w->topic = strndup(topic->via.str.ptr, topic->via.str.size);
		w->prefix = malloc(pfx->via.str.size + 1);
	}
	if (!w || !c || !w->topic || !w->prefix) {
		if (w) {
			free(w->topic);
			free(w->prefix);
		}
		free(w);
		free(c);
		reply_err(s, token, KB_ENOMEM, "out of memory");
		return;
	}
	memcpy(w->prefix, pfx->via.str.ptr, pfx->via.str.size);
	w->pn = pfx->via.str.size;
	w->s = s;
	w->prev = prev;
	w->last = rev == 0 ? cur : rev - 1;
	w->reply_rev = cur;
	w->token = token;
	w->token_dl = dl > 0 ? dl : ec_now_ms() + s->conf.retry_timeout_ms;
	pthread_mutex_lock(&s->wmu);
	w->id = ++s->next_watch_id;
	pthread_mutex_unlock(&s->wmu);
	c->kind = CMD_ADD;
	c->w = w;
	push_cmd(s, c);
}

void ec_watch_del(struct ec_store *s, const msgpack_object *req, void *token)
{
	int64_t id;
	if (!ec_mp_int(req, "watch_id", &id)) {
		reply_err(s, token, KB_EINVAL, "`watch_id`: expected an integer");
		return;
	}
	struct ec_wcmd *c = calloc(1, sizeof *c);
	if (!c) {
		reply_err(s, token, KB_ENOMEM, "out of memory");
		return;
	}
	c->kind = CMD_DEL;
	c->id = id;
	c->token = token;
	push_cmd(s, c);
}
