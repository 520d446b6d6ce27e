/* core/conn.c — connections to other processes: framing, hello, routing.
 *
 * Each connection keeps one receive in flight into a growing buffer and
 * parses every whole frame it holds; sends are queued and coalesced so that
 * many small frames leave in one write (that is where the core beats a
 * plain req/rep socket: no per-message hop, no per-message syscall).
 *
 * Liveness: a frozen or partitioned host sends no FIN or RST, and TCP may
 * take many minutes to give up. So the uplink pings every bus.keepalive
 * and hangs up after bus.keepalive_timeout without a byte from its host
 * (the reconnect rounds then move it); the host answers each ping at once
 * and drops a peer that pinged and then stayed silent that long, so a
 * dead worker's services and subscriptions are released. TCP keepalive on
 * every tcp and tls+tcp stream is the backstop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "auth.h"
#include "bus.h"
#include "certauth.h"
#include "conn.h"
#include "envelope.h"
#include "host.h"
#include "log.h"

#define GARBAGE_LIMIT 8         /* malformed frames before we hang up */
#define TXQ_LIMIT (512u << 20)  /* queued bytes before a peer counts as dead */

struct conn {
	struct kb_net *net;
	nng_stream *s;
	nng_aio *rx, *tx;
	uint64_t serial;
	bool uplink;
	atomic_int refs;

	uint8_t *rbuf;
	size_t rlen, rcap;

	pthread_mutex_t mu;          /* tx queue, state */
	pthread_cond_t cv;           /* hello answered */
	msgpack_sbuffer q;           /* frames waiting to be written */
	msgpack_sbuffer out;         /* the frames being written */
	size_t out_off;
	bool tx_busy;
	bool closed;
	int hello;                   /* uplink: 0 waiting, 1 ok, -1 refused */
	char hello_err[256];

	bool tls;                    /* a tls+tcp connection */
	bool hello_sent;             /* uplink: our hello is out */
	uint8_t nonce[KB_NONCE_LEN]; /* the challenge this host sent */
	struct kb_env *env;          /* decode space, reused: rx is serial */
	struct kb_ident *last_who;   /* uplink: the last stamped sender */
	bool authed;
	bool linger;                 /* close once the queue is written */
	bool ping_ok;                /* uplink: the host answers pings */
	_Atomic int64_t last_rx_ns;  /* when the last bytes came in */
	_Atomic int64_t silence_ms;  /* peer: hang up after this long quiet
	                              * (what its pings announce); 0 never */
	int garbage;
	struct kb_endpoint *ep;
	struct conn *next;
};

struct listener {
	nng_stream_listener *l;
	bool tls;
	nng_aio *acc;
	char *url;
	struct kb_net *net;
	struct listener *next;
};

struct kb_net {
	struct kb_host *h;
	struct kb_bus *bus;
	pthread_mutex_t mu;
	struct conn *conns;          /* live */
	struct conn *dead;           /* closed, waiting to be freed */
	struct listener *listeners;
	struct conn *up;             /* the uplink */
	char **up_urls;              /* its addresses, in config order */
	size_t nup;
	size_t up_cur;               /* the one connected last (mu) */
	nng_tls_config **up_tls;     /* per address: its own server name */
	char *up_token;
	uint64_t serial;
	bool closing;
	pthread_t reaper;
	pthread_cond_t reap_cv;
	int reconnecting;            /* reconnect threads alive */
	pthread_cond_t reconnect_cv; /* closing, or one of them ended */
	nng_tls_config *tls_server;
	pthread_t keeper;            /* pings the uplink, drops silent peers */
	pthread_cond_t keep_cv;      /* closing */
	int64_t last_ping_ns;        /* keeper only */
	uint64_t ping_id;            /* keeper only */
};

/* Reconnect backoff: first retry, cap. */
#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 10000

static void rx_start(struct conn *c);
static void conn_close(struct conn *c, const char *why);
static int conn_deliver(void *peer, kb_msg *m);
static const struct kb_ep_ops conn_ops = { .deliver = conn_deliver };

static void conn_unref(struct conn *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	nng_aio_free(c->rx);
	nng_aio_free(c->tx);
	if (c->s)
		nng_stream_free(c->s);
	msgpack_sbuffer_destroy(&c->q);
	msgpack_sbuffer_destroy(&c->out);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c->rbuf);
	free(c->env);
	kb_ident_unref(c->last_who);
	free(c);
}

/* --- sending -------------------------------------------------------------------- */

static void tx_kick_locked(struct conn *c)
{
	if (c->tx_busy || c->closed || c->q.size == 0)
		return;
	/* Swap the queue into the out buffer: everything queued leaves in
	 * one write. */
	msgpack_sbuffer t = c->out;
	c->out = c->q;
	c->q = t;
	c->q.size = 0;
	c->out_off = 0;
	c->tx_busy = true;
	nng_iov iov = { .iov_buf = c->out.data, .iov_len = c->out.size };
	nng_aio_set_iov(c->tx, 1, &iov);
	atomic_fetch_add(&c->refs, 1);
	nng_stream_send(c->s, c->tx);
}

static void tx_done(void *arg)
{
	struct conn *c = arg;
	int rv = nng_aio_result(c->tx);
	pthread_mutex_lock(&c->mu);
	if (rv != 0) {
		c->tx_busy = false;
		pthread_mutex_unlock(&c->mu);
		conn_close(c, nng_strerror(rv));
		conn_unref(c);
		return;
	}
	c->out_off += nng_aio_count(c->tx);
	if (c->out_off < c->out.size && !c->closed) {
		nng_iov iov = { .iov_buf = c->out.data + c->out_off,
			.iov_len = c->out.size - c->out_off };
		nng_aio_set_iov(c->tx, 1, &iov);
		/* under c->mu: see rx_start */
		nng_stream_send(c->s, c->tx);
		pthread_mutex_unlock(&c->mu);
		return; /* the reference travels with the send */
	}
	c->tx_busy = false;
	c->out.size = 0;
	tx_kick_locked(c);
	bool done = c->linger && !c->tx_busy;
	pthread_mutex_unlock(&c->mu);
	if (done)
		conn_close(c, "refused");
	conn_unref(c);
}

/* Stop reading and hang up once what is queued (an error for the peer)
 * has been written. */
static bool reject(struct conn *c)
{
	pthread_mutex_lock(&c->mu);
	c->linger = true;
	bool now = !c->tx_busy;
	pthread_mutex_unlock(&c->mu);
	if (now)
		conn_close(c, "refused");
	return true;
}

/* Queue one frame built by kb_env_encode. KB_ECLOSED when the peer is gone. */
static int conn_send_env(struct conn *c, int t, uint64_t id,
    const struct kb_ident *who, const char *dst, const char *op, int64_t dl,
    const kb_body *body, int ecode, const char *emsg)
{
	size_t blen = 0;
	const void *b = body ? kb_body_data(body, &blen) : NULL;
	pthread_mutex_lock(&c->mu);
	if (c->closed || c->q.size > TXQ_LIMIT) {
		bool overflow = !c->closed;
		pthread_mutex_unlock(&c->mu);
		if (overflow)
			conn_close(c, "send queue overflow");
		return KB_ECLOSED;
	}
	kb_env_encode(&c->q, t, id, who ? who->endpoint : NULL,
	    who ? who->user : NULL, who ? (const char *const *)who->groups : NULL,
	    who ? who->ngroups : 0, dst, op, dl, b, blen, ecode, emsg);
	tx_kick_locked(c);
	pthread_mutex_unlock(&c->mu);
	return 0;
}

/* Requests and publications the bus routes to this peer. */
static int conn_deliver(void *peer, kb_msg *m)
{
	struct conn *c = peer;
	int64_t dl = 0;
	if (m->deadline_ns) {
		dl = (m->deadline_ns - kb_now_ns()) / 1000000;
		if (dl < 1)
			dl = 1;
	}
	int rc = conn_send_env(c, m->type == KB_T_REQ ? KB_ENV_REQ : KB_ENV_PUB,
	    m->id, m->who, m->dst, m->type == KB_T_REQ ? m->op : NULL, dl,
	    m->body, 0, NULL);
	if (rc == 0)
		kb_msg_free(m);
	return rc;
}

/* --- requests that came from this peer -------------------------------------------- */

struct remote_req {
	struct conn *c;
	uint64_t id;
};

static void remote_reply(void *arg, int rc, const kb_msg *rep)
{
	struct remote_req *r = arg;
	if (rc != KB_ECLOSED) {
		const char *msg = "";
		if (rep)
			kb_msg_err(rep, &msg);
		else
			msg = kb_strerror(rc);
		conn_send_env(r->c, rc ? KB_ENV_ERR : KB_ENV_REP, r->id, NULL, NULL,
		    NULL, 0, rep ? rep->body : NULL, rc, msg);
	}
	conn_unref(r->c);
	free(r);
}

static bool same_ident(const struct kb_ident *id, const struct kb_env *e)
{
	if (id == NULL || id->ngroups != e->ngroups || strcmp(id->endpoint, e->src) ||
	    strcmp(id->user, e->p))
		return false;
	for (size_t i = 0; i < e->ngroups; i++)
		if (strcmp(id->groups[i], e->groups[i]))
			return false;
	return true;
}

/* The sender the uplink stamped. Runs of messages from one sender share
 * one identity instead of allocating one each. */
static struct kb_ident *frame_ident(struct conn *c, const struct kb_env *e)
{
	if (!same_ident(c->last_who, e)) {
		const char *groups[KB_ENV_MAX_GROUPS];
		for (size_t i = 0; i < e->ngroups; i++)
			groups[i] = e->groups[i];
		struct kb_ident *id = kb_ident_new(e->src, e->p, "", groups, e->ngroups);
		if (id == NULL)
			return NULL;
		kb_ident_unref(c->last_who);
		c->last_who = id;
	}
	return kb_ident_ref(c->last_who);
}

static void on_req(struct conn *c, const struct kb_env *e, kb_body *body)
{
	struct kb_ident *who = c->uplink ? frame_ident(c, e) : kb_ident_ref(kb_ep_ident(c->ep));
	struct remote_req *r = calloc(1, sizeof(*r));
	int rc = KB_ENOMEM;
	if (r && who) {
		r->c = c;
		r->id = e->id;
		atomic_fetch_add(&c->refs, 1);
		rc = kb_bus_request(c->ep, who, e->dst, e->op, body,
		    e->dl > 0 ? (int)(e->dl > INT32_MAX ? INT32_MAX : e->dl) : 0,
		    remote_reply, r);
		if (rc != 0) {
			conn_unref(c);
			free(r);
			kb_body_unref(body);
		}
	} else {
		free(r);
		kb_body_unref(body);
	}
	kb_ident_unref(who);
	if (rc != 0) {
		char msg[384];
		if (rc == KB_EFORBIDDEN)
			snprintf(msg, sizeof(msg), "%s may not call %s %s",
			    kb_ep_ident(c->ep)->user, e->dst, e->op);
		else
			snprintf(msg, sizeof(msg), "%s: %s", e->dst, kb_strerror(rc));
		conn_send_env(c, KB_ENV_ERR, e->id, NULL, NULL, NULL, 0, NULL, rc, msg);
	}
}

/* May this peer serve `service`? Isolated plugins (principal plugin:*)
 * serve anything but the core's own; a node serves only its own names. */
static bool may_register(struct conn *c, const char *service)
{
	const struct kb_ident *who = kb_ep_ident(c->ep);
	if (strcmp(service, "auth") == 0)
		return false;
	if (strncmp(who->user, "plugin:", 7) == 0 ||
	    kb_ident_in_group(who, "system:masters"))
		return true;
	if (strncmp(who->user, "node:", 5) == 0) {
		const char *node = who->user + 5;
		const char *slash = strrchr(service, '/');
		return slash && strcmp(slash + 1, node) == 0;
	}
	return false;
}

/* --- receiving ---------------------------------------------------------------------- */

/* The identity a certificate hello proves, or NULL with why. */
static struct kb_ident *cert_ident(struct conn *c, const msgpack_object *o,
    char *why, size_t whylen)
{
	const char *pem, *name;
	size_t pl, nl;
	const msgpack_object *sig = kb_mp_get(o, "sig");
	struct kb_host *h = c->net->h;
	if (!kb_mp_str(o, "cert", &pem, &pl) || sig == NULL ||
	    sig->type != MSGPACK_OBJECT_BIN) {
		snprintf(why, whylen, "a certificate hello needs cert (PEM) and sig (bin)");
		return NULL;
	}
	if (h->tls_ca == NULL) {
		snprintf(why, whylen, "this host has no bus.tls.ca to check certificates");
		return NULL;
	}
	char *user;
	char **groups;
	size_t ng;
	if (kb_cert_verify(h->tls_ca, pem, pl, c->nonce, sizeof(c->nonce),
	        (const uint8_t *)sig->via.bin.ptr, sig->via.bin.size, &user, &groups,
	        &ng, why, whylen))
		return NULL;
	char ename[160];
	if (!kb_mp_str(o, "name", &name, &nl) || nl > 100)
		name = "peer", nl = 4;
	snprintf(ename, sizeof(ename), "%.*s#%llu", (int)nl, name,
	    (unsigned long long)c->serial);
	groups[ng++] = strdup("system:authenticated");
	struct kb_ident *who = kb_ident_new(ename, user, "", (const char *const *)groups, ng);
	for (size_t i = 0; i < ng; i++)
		free(groups[i]);
	free(groups);
	free(user);
	return who;
}

static bool hello_accept(struct conn *c, const struct kb_env *e)
{
	char why[256] = "";
	struct kb_ident *who = NULL;
	kb_body *b = e->body ? kb_body_new(e->body, e->body_len) : NULL;
	const msgpack_object *o = kb_body_obj(b);
	const char *tok = NULL, *name = NULL;
	size_t tl = 0, nl = 0;
	char token[512] = "", ename[160];
	if (e->v != KB_PROTO_VERSION) {
		snprintf(why, sizeof(why),
		    "protocol version %llu is not supported: this host speaks %d",
		    (unsigned long long)e->v, KB_PROTO_VERSION);
	} else if (c->tls && kb_mp_get(o, "cert")) {
		who = cert_ident(c, o, why, sizeof(why));
	} else if (!kb_mp_str(o, "token", &tok, &tl) || tl == 0 || tl >= sizeof(token)) {
		snprintf(why, sizeof(why), "hello without a token%s",
		    c->tls ? " or a signed certificate" : "");
	} else {
		memcpy(token, tok, tl);
		token[tl] = '\0';
		if (!kb_mp_str(o, "name", &name, &nl) || nl > 100)
			name = "peer", nl = 4;
		snprintf(ename, sizeof(ename), "%.*s#%llu", (int)nl, name,
		    (unsigned long long)c->serial);
		if (kb_auth_authenticate(kb_bus_auth(c->net->bus), token, ename, &who))
			snprintf(why, sizeof(why), "invalid bearer token");
	}
	memset(token, 0, sizeof(token));
	kb_body_unref(b);
	if (who == NULL) {
		conn_send_env(c, KB_ENV_ERR, e->id, NULL, NULL, NULL, 0, NULL,
		    e->v != KB_PROTO_VERSION ? KB_EBADREQUEST : KB_EUNAUTHORIZED, why);
		return false;
	}
	c->ep = kb_bus_open_remote(c->net->bus, who->endpoint, who, &conn_ops, c, false);
	if (c->ep == NULL) {
		kb_ident_unref(who);
		return false;
	}
	c->authed = true;
	kb_body *rep = kb_mp_body("{s:s, s:s, s:b}", "user", who->user, "host",
	    c->net->h->name, "ping", true);
	conn_send_env(c, KB_ENV_REP, e->id, NULL, NULL, NULL, 0, rep, 0, NULL);
	kb_body_unref(rep);
	kb_clog(KB_LOG_INFO, "peer joined", "endpoint=%s user=%s", who->endpoint, who->user);
	kb_ident_unref(who);
	return true;
}

/* Prove our certificate: sign the host's nonce, send cert and signature. */
static void send_cert_hello(struct conn *c, const struct kb_env *e)
{
	struct kb_host *h = c->net->h;
	kb_body *b = e->body ? kb_body_new(e->body, e->body_len) : NULL;
	const msgpack_object *nonce = kb_mp_get(kb_body_obj(b), "nonce");
	char *pem = NULL, err[256] = "no nonce in the challenge";
	uint8_t *sig = NULL;
	size_t siglen = 0;
	if (nonce && nonce->type == MSGPACK_OBJECT_BIN &&
	    kb_cert_sign(h->tls_cert, h->tls_key, (const uint8_t *)nonce->via.bin.ptr,
	        nonce->via.bin.size, &pem, &sig, &siglen, err, sizeof(err)) == 0) {
		msgpack_sbuffer sb;
		msgpack_packer pk;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 3);
		kb_mp_pack(&pk, "s:s, s:s, s", "cert", pem, "name",
		    h->only_instance ? h->only_instance : h->name, "sig");
		msgpack_pack_bin(&pk, siglen);
		msgpack_pack_bin_body(&pk, sig, siglen);
		kb_body *hello = kb_body_from_sbuf(&sb);
		msgpack_sbuffer_destroy(&sb);
		c->hello_sent = true;
		conn_send_env(c, KB_ENV_HELLO, 1, NULL, NULL, NULL, 0, hello, 0, NULL);
		kb_body_unref(hello);
	} else {
		pthread_mutex_lock(&c->mu);
		c->hello = -1;
		snprintf(c->hello_err, sizeof(c->hello_err), "%s", err);
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
	}
	free(pem);
	free(sig);
	kb_body_unref(b);
}

/* One whole frame. Returns false when the connection must close. */
static bool on_frame(struct conn *c, const uint8_t *buf, size_t len)
{
	if (c->env == NULL && (c->env = malloc(sizeof(*c->env))) == NULL)
		return false;
	struct kb_env *e = c->env;
	const char *why;
	bool keep = true;
	if (kb_env_decode(buf, len, e, &why) != 0) {
		atomic_fetch_add(&kb_bus_stats(c->net->bus)->malformed, 1);
		kb_clog(KB_LOG_WARN, "malformed frame dropped", "peer=%llu reason=\"%s\"",
		    (unsigned long long)c->serial, why);
		if (!c->authed && !c->uplink) {
			conn_send_env(c, KB_ENV_ERR, e->id, NULL, NULL, NULL, 0, NULL,
			    KB_EUNAUTHORIZED, "say hello with a token first");
			keep = reject(c);
		} else if (++c->garbage >= GARBAGE_LIMIT) {
			keep = false;
		} else if (e->seen & KB_ENV_HAS_ID) {
			conn_send_env(c, KB_ENV_ERR, e->id, NULL, NULL, NULL, 0, NULL,
			    KB_EBADREQUEST, why);
		}
		goto out;
	}
	if (e->v != KB_PROTO_VERSION) {
		char msg[128];
		snprintf(msg, sizeof(msg), "protocol version %llu is not supported: this host speaks %d",
		    (unsigned long long)e->v, KB_PROTO_VERSION);
		conn_send_env(c, KB_ENV_ERR, e->id, NULL, NULL, NULL, 0, NULL, KB_EBADREQUEST, msg);
		keep = reject(c);
		goto out;
	}
	if (c->uplink && c->hello == 0 && e->t == KB_ENV_HELLO) {
		/* The host's challenge: answer it unless a token went out. */
		if (!c->hello_sent)
			send_cert_hello(c, e);
		goto out;
	}
	if (c->uplink && c->hello == 0) {
		if (e->t == KB_ENV_REP && e->body) {
			/* A host that answers pings says so; an older one does
			 * not, and is never pinged (it would count pings as
			 * garbage and hang up). */
			kb_body *hb = kb_body_new(e->body, e->body_len);
			bool ping = false;
			c->ping_ok = hb && kb_mp_bool(kb_body_obj(hb), "ping", &ping) && ping;
			kb_body_unref(hb);
		}
		pthread_mutex_lock(&c->mu);
		c->hello = e->t == KB_ENV_REP ? 1 : -1;
		snprintf(c->hello_err, sizeof(c->hello_err), "%.200s",
		    e->t == KB_ENV_REP ? "" : e->emsg);
		pthread_cond_broadcast(&c->cv);
		pthread_mutex_unlock(&c->mu);
		keep = c->hello == 1;
		goto out;
	}
	if (!c->authed && !c->uplink) {
		if (e->t != KB_ENV_HELLO) {
			conn_send_env(c, KB_ENV_ERR, e->id, NULL, NULL, NULL, 0, NULL,
			    KB_EUNAUTHORIZED, "say hello with a token first");
			keep = reject(c);
		} else if (!hello_accept(c, e)) {
			keep = reject(c);
		}
		goto out;
	}
	kb_body *body = e->body ? kb_body_new(e->body, e->body_len) : NULL;
	switch (e->t) {
	case KB_ENV_REQ:
		on_req(c, e, body);
		break;
	case KB_ENV_REP:
	case KB_ENV_ERR:
		kb_bus_complete(c->ep, e->id, e->t == KB_ENV_ERR ? e->ecode : 0,
		    e->emsg, body);
		break;
	case KB_ENV_PUB: {
		struct kb_ident *who = c->uplink ? frame_ident(c, e) : NULL;
		if (kb_bus_publish(c->ep, who, e->dst, body) != 0)
			kb_body_unref(body);
		kb_ident_unref(who);
		break;
	}
	case KB_ENV_SUB:
		kb_body_unref(body);
		if (kb_bus_subscribe(c->ep, e->dst, NULL, NULL) != 0)
			kb_clog(KB_LOG_WARN, "peer subscription refused", "peer=%s pattern=%s",
			    kb_ep_name(c->ep), e->dst);
		break;
	case KB_ENV_UNSUB:
		kb_body_unref(body);
		kb_bus_unsubscribe(c->ep, e->dst);
		break;
	case KB_ENV_REG:
		kb_body_unref(body);
		if (c->uplink || !may_register(c, e->dst) ||
		    kb_bus_serve(c->ep, e->dst, NULL, NULL) != 0)
			kb_clog(KB_LOG_WARN, "peer service registration refused",
			    "peer=%s service=%s", kb_ep_name(c->ep), e->dst);
		break;
	case KB_ENV_READY:
		kb_body_unref(body);
		kb_child_ready(c->net->h, kb_ep_ident(c->ep)->user);
		break;
	case KB_ENV_PING: {
		/* Answered here, on the receive thread: no routing, no
		 * allocation beyond the frame. */
		int64_t t = 0;
		if (kb_mp_int(kb_body_obj(body), "t", &t) && t > 0)
			atomic_store(&c->silence_ms, t);
		kb_body_unref(body);
		conn_send_env(c, KB_ENV_PONG, e->id, NULL, NULL, NULL, 0, NULL, 0, NULL);
		break;
	}
	case KB_ENV_PONG:
		/* rx_done has noted the traffic: that is all a pong is for. */
		kb_body_unref(body);
		break;
	default:
		kb_body_unref(body);
		atomic_fetch_add(&kb_bus_stats(c->net->bus)->malformed, 1);
		break;
	}
out:
	return keep;
}

static void rx_done(void *arg)
{
	struct conn *c = arg;
	int rv = nng_aio_result(c->rx);
	if (rv != 0) {
		conn_close(c, rv == NNG_ECLOSED || rv == NNG_ECONNSHUT ? "peer closed" : nng_strerror(rv));
		conn_unref(c);
		return;
	}
	c->rlen += nng_aio_count(c->rx);
	atomic_store(&c->last_rx_ns, kb_now_ns());
	size_t off = 0;
	size_t max = (size_t)c->net->h->max_message;
	while (c->rlen - off >= 4) {
		const uint8_t *p = c->rbuf + off;
		size_t flen = ((size_t)p[0] << 24) | ((size_t)p[1] << 16) |
		    ((size_t)p[2] << 8) | p[3];
		if (flen > max) {
			atomic_fetch_add(&kb_bus_stats(c->net->bus)->malformed, 1);
			conn_close(c, "frame larger than bus.max_message");
			conn_unref(c);
			return;
		}
		if (c->rlen - off - 4 < flen) {
			/* Make room for the rest of this frame. */
			if (flen + 4 > c->rcap) {
				memmove(c->rbuf, c->rbuf + off, c->rlen - off);
				c->rlen -= off;
				off = 0;
				uint8_t *nb = realloc(c->rbuf, flen + 4);
				if (nb == NULL) {
					conn_close(c, "out of memory");
					conn_unref(c);
					return;
				}
				c->rbuf = nb;
				c->rcap = flen + 4;
			}
			break;
		}
		if (!on_frame(c, p + 4, flen)) {
			conn_close(c, "protocol error");
			conn_unref(c);
			return;
		}
		off += 4 + flen;
		if (c->linger)
			break;
	}
	if (c->linger) {
		conn_unref(c);
		return;
	}
	memmove(c->rbuf, c->rbuf + off, c->rlen - off);
	c->rlen -= off;
	/* Shrink back after a big frame so idle peers hold little memory. */
	if (c->rcap > (1u << 20) && c->rlen < 65536) {
		uint8_t *nb = realloc(c->rbuf, 65536);
		if (nb) {
			c->rbuf = nb;
			c->rcap = 65536;
		}
	}
	rx_start(c);
	conn_unref(c);
}

/* Submit under c->mu, as tx_kick_locked does: once conn_close has set
 * `closed` the reaper may nng_aio_stop the aio, and an operation started
 * on a stopped aio never calls back, so its reference would leak. */
static void rx_start(struct conn *c)
{
	pthread_mutex_lock(&c->mu);
	if (c->closed) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	nng_iov iov = { .iov_buf = c->rbuf + c->rlen, .iov_len = c->rcap - c->rlen };
	nng_aio_set_iov(c->rx, 1, &iov);
	atomic_fetch_add(&c->refs, 1);
	nng_stream_recv(c->s, c->rx);
	pthread_mutex_unlock(&c->mu);
}

static struct conn *conn_new(struct kb_net *n, nng_stream *s, bool uplink)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->net = n;
	c->s = s;
	c->uplink = uplink;
	atomic_init(&c->refs, 1);
	atomic_init(&c->last_rx_ns, kb_now_ns());
	atomic_init(&c->silence_ms, 0);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	msgpack_sbuffer_init(&c->q);
	msgpack_sbuffer_init(&c->out);
	c->rcap = 65536;
	c->rbuf = malloc(c->rcap);
	if (c->rbuf == NULL || nng_aio_alloc(&c->rx, rx_done, c) != 0 ||
	    nng_aio_alloc(&c->tx, tx_done, c) != 0) {
		c->s = NULL;
		conn_unref(c);
		return NULL;
	}
	pthread_mutex_lock(&n->mu);
	c->serial = ++n->serial;
	c->next = n->conns;
	n->conns = c;
	pthread_mutex_unlock(&n->mu);
	return c;
}

static void reconnect_later(struct kb_net *n);

static void conn_close(struct conn *c, const char *why)
{
	pthread_mutex_lock(&c->mu);
	if (c->closed) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	c->closed = true;
	if (c->hello == 0) {
		c->hello = -1;
		snprintf(c->hello_err, sizeof(c->hello_err), "%s", why);
	}
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	nng_stream_close(c->s);
	struct kb_net *n = c->net;
	if (c->ep) {
		kb_clog(KB_LOG_INFO, "peer left", "endpoint=%s reason=\"%s\"",
		    kb_ep_name(c->ep), why);
		atomic_fetch_add(&kb_bus_stats(n->bus)->disconnects, 1);
		kb_bus_close(c->ep);
		c->ep = NULL;
	}
	pthread_mutex_lock(&n->mu);
	for (struct conn **pp = &n->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			c->next = n->dead;
			n->dead = c;
			break;
		}
	}
	bool was_up = n->up == c;
	if (was_up)
		n->up = NULL;
	pthread_cond_signal(&n->reap_cv);
	bool closing = n->closing;
	pthread_mutex_unlock(&n->mu);
	if (was_up && !closing)
		reconnect_later(n);
}

/* Dead connections are freed here, off the nng callback threads, because
 * nng_aio_stop must not run inside the aio's own callback. */
static void *reaper_main(void *arg)
{
	struct kb_net *n = arg;
	pthread_mutex_lock(&n->mu);
	for (;;) {
		while (n->dead == NULL && !(n->closing && n->conns == NULL))
			pthread_cond_wait(&n->reap_cv, &n->mu);
		struct conn *dead = n->dead;
		n->dead = NULL;
		pthread_mutex_unlock(&n->mu);
		while (dead) {
			struct conn *c = dead;
			dead = c->next;
			nng_aio_stop(c->rx);
			nng_aio_stop(c->tx);
			conn_unref(c);
		}
		pthread_mutex_lock(&n->mu);
		/* Done once kb_net_free has closed every connection and each
		 * is freed: leaving while one is still live (being closed by
		 * kb_net_free or by its peer) would leak it. */
		if (n->closing && n->conns == NULL && n->dead == NULL)
			break;
	}
	pthread_mutex_unlock(&n->mu);
	return NULL;
}

/* --- listening ------------------------------------------------------------------------ */

static int send_challenge(struct conn *c)
{
	c->tls = true;
	if (getrandom(c->nonce, sizeof(c->nonce), 0) != (ssize_t)sizeof(c->nonce))
		return -1;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	kb_mp_pack_cstr(&pk, "nonce");
	msgpack_pack_bin(&pk, sizeof(c->nonce));
	msgpack_pack_bin_body(&pk, c->nonce, sizeof(c->nonce));
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	conn_send_env(c, KB_ENV_HELLO, 0, NULL, NULL, NULL, 0, b, 0, NULL);
	kb_body_unref(b);
	return 0;
}

static void accept_done(void *arg)
{
	struct listener *l = arg;
	if (nng_aio_result(l->acc) != 0)
		return; /* closed */
	nng_stream *s = nng_aio_get_output(l->acc, 0);
	struct conn *c = conn_new(l->net, s, false);
	if (c == NULL) {
		nng_stream_free(s);
	} else {
		/* Our own reference while we set it up: the challenge's send
		 * may fail at once and the reaper free it under our feet. */
		atomic_fetch_add(&c->refs, 1);
		if (l->tls && send_challenge(c) != 0)
			conn_close(c, "cannot make a nonce");
		rx_start(c);
		conn_unref(c);
	}
	nng_stream_listener_accept(l->l, l->acc);
}

char *kb_net_resolve_url(const char *url, const char *data_dir)
{
	if (strncmp(url, "ipc://", 6) == 0 && url[6] != '/' && url[6] != '\0') {
		char buf[4096];
		snprintf(buf, sizeof(buf), "ipc://%s/%s", data_dir, url + 6);
		return strdup(buf);
	}
	return strdup(url);
}

/* SO_KEEPALIVE on tcp and tls+tcp streams: the backstop for a peer that
 * vanished without a word and that no ping reaches (keepalive off, or an
 * older peer). nng's tls transport hands the option to its tcp stream. */
static bool is_tcp(const char *url)
{
	return strncmp(url, "tcp", 3) == 0 || strncmp(url, "tls+tcp", 7) == 0;
}

/* tcp:// carries tokens in clear: loopback only. */
static bool tcp_loopback(const char *url)
{
	const char *h = url + 6;
	if (strncmp(h, "127.", 4) == 0 || strncmp(h, "localhost:", 10) == 0 ||
	    strncmp(h, "[::1]:", 6) == 0)
		return true;
	return false;
}

static int tls_setup(struct kb_net *n, bool server, nng_tls_config **out,
    char *err, size_t errlen)
{
	struct kb_host *h = n->h;
	nng_tls_config *cfg;
	int rv;
	if (h->tls_cert == NULL || h->tls_ca == NULL) {
		snprintf(err, errlen, "tls+tcp needs bus.tls.cert and bus.tls.ca");
		return KB_EINVAL;
	}
	if ((rv = nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT)))
		goto fail;
	if (h->tls_key) {
		FILE *fc = fopen(h->tls_cert, "r"), *fk = fopen(h->tls_key, "r");
		char cert[65536] = "", key[65536] = "";
		size_t nc = fc ? fread(cert, 1, sizeof(cert) - 1, fc) : 0;
		size_t nk = fk ? fread(key, 1, sizeof(key) - 1, fk) : 0;
		if (fc)
			fclose(fc);
		if (fk)
			fclose(fk);
		cert[nc] = key[nk] = '\0';
		rv = nc && nk ? nng_tls_config_own_cert(cfg, cert, key, NULL) : NNG_ENOENT;
		memset(key, 0, sizeof(key));
	} else {
		rv = nng_tls_config_cert_key_file(cfg, h->tls_cert, NULL);
	}
	if (rv == 0)
		rv = nng_tls_config_ca_file(cfg, h->tls_ca);
	/* A listener lets a peer without a client certificate finish TLS, as
	 * kube-apiserver does: the hello proves who it is (a signed nonce or a
	 * token — a joining worker's bootstrap token), before anything routes. */
	if (rv == 0)
		rv = nng_tls_config_auth_mode(cfg,
		    server ? NNG_TLS_AUTH_MODE_OPTIONAL : NNG_TLS_AUTH_MODE_REQUIRED);
	if (rv) {
		nng_tls_config_free(cfg);
		goto fail;
	}
	*out = cfg;
	return 0;
fail:
	snprintf(err, errlen, "TLS setup: %s", nng_strerror(rv));
	return KB_EINVAL;
}

int kb_net_listen(struct kb_net *n, const char *url0, char *err, size_t errlen)
{
	char *url = kb_net_resolve_url(url0, n->h->data_dir);
	struct listener *l = calloc(1, sizeof(*l));
	int rv = 0;
	if (url == NULL || l == NULL) {
		rv = NNG_ENOMEM;
		goto fail;
	}
	if (strncmp(url, "tcp://", 6) == 0 && !tcp_loopback(url)) {
		snprintf(err, errlen, "bus listener %s: tcp:// is for loopback only; use tls+tcp:// for other hosts", url);
		goto fail_msg;
	}
	l->net = n;
	l->url = url;
	if ((rv = nng_stream_listener_alloc(&l->l, url)))
		goto fail;
	if (strncmp(url, "ipc://", 6) == 0)
		nng_stream_listener_set_int(l->l, NNG_OPT_IPC_PERMISSIONS, 0600);
	if (is_tcp(url) && (rv = nng_stream_listener_set_bool(l->l, NNG_OPT_TCP_KEEPALIVE, true)))
		goto fail;
	if (strncmp(url, "tls+tcp://", 10) == 0) {
		l->tls = true;
		if (n->tls_server == NULL && tls_setup(n, true, &n->tls_server, err, errlen))
			goto fail_msg;
		if ((rv = nng_stream_listener_set_ptr(l->l, NNG_OPT_TLS_CONFIG, n->tls_server)))
			goto fail;
	}
	if ((rv = nng_stream_listener_listen(l->l)) ||
	    (rv = nng_aio_alloc(&l->acc, accept_done, l)))
		goto fail;
	size_t ul = strlen(url);
	int port;
	if (ul > 2 && strcmp(url + ul - 2, ":0") == 0 &&
	    nng_stream_listener_get_int(l->l, NNG_OPT_TCP_BOUND_PORT, &port) == 0) {
		/* Port 0 picked a free port: say which. */
		char *bound;
		if (asprintf(&bound, "%.*s:%d", (int)(ul - 2), url, port) > 0) {
			free(url);
			l->url = url = bound;
		}
	}
	pthread_mutex_lock(&n->mu);
	l->next = n->listeners;
	n->listeners = l;
	pthread_mutex_unlock(&n->mu);
	nng_stream_listener_accept(l->l, l->acc);
	kb_clog(KB_LOG_INFO, "bus listening", "url=%s", url);
	return 0;
fail:
	snprintf(err, errlen, "bus listener %s: %s", url ? url : url0, nng_strerror(rv));
fail_msg:
	if (l && l->l)
		nng_stream_listener_free(l->l);
	free(l);
	free(url);
	return KB_EINVAL;
}

const char *kb_net_listen_url(struct kb_net *n, size_t i)
{
	struct listener *l = n->listeners;
	size_t count = 0;
	for (struct listener *x = l; x; x = x->next)
		count++;
	/* The list is newest first; index in config order. */
	for (size_t k = count; l; l = l->next)
		if (--k == i)
			return l->url;
	return NULL;
}

/* --- the uplink ------------------------------------------------------------------------ */

/* Dial address i of the uplink list. Each tls+tcp address has its own
 * client TLS config: nng fixes a config's server name once a connection
 * has used it, and each address is checked against its own host name. */
static int dial(struct kb_net *n, size_t i, nng_stream **out, char *err,
    size_t errlen)
{
	const char *url = n->up_urls[i];
	nng_stream_dialer *d = NULL;
	nng_aio *aio = NULL;
	int rv = nng_stream_dialer_alloc(&d, url);
	if (rv == 0 && is_tcp(url))
		rv = nng_stream_dialer_set_bool(d, NNG_OPT_TCP_KEEPALIVE, true);
	if (rv == 0 && strncmp(url, "tls+tcp://", 10) == 0) {
		if (n->up_tls[i] == NULL) {
			nng_tls_config *cfg;
			if (tls_setup(n, false, &cfg, err, errlen)) {
				nng_stream_dialer_free(d);
				return KB_EINVAL;
			}
			/* The host's certificate must name the host we
			 * dialled, unless bus.tls.server_name says otherwise. */
			char host[256];
			const char *hp = url + 10, *colon = strrchr(hp, ':');
			snprintf(host, sizeof(host), "%.*s",
			    colon ? (int)(colon - hp) : (int)strlen(hp), hp);
			if (host[0] == '[' && host[strlen(host) - 1] == ']') {
				memmove(host, host + 1, strlen(host));
				host[strlen(host) - 1] = '\0';
			}
			rv = nng_tls_config_server_name(cfg,
			    n->h->tls_server_name ? n->h->tls_server_name : host);
			if (rv) {
				nng_tls_config_free(cfg);
				nng_stream_dialer_free(d);
				snprintf(err, errlen, "%s: TLS server name: %s", url,
				    nng_strerror(rv));
				return KB_EINVAL;
			}
			/* Two reconnect threads may overlap for a moment. */
			pthread_mutex_lock(&n->mu);
			if (n->up_tls[i] == NULL) {
				n->up_tls[i] = cfg;
				cfg = NULL;
			}
			pthread_mutex_unlock(&n->mu);
			if (cfg)
				nng_tls_config_free(cfg);
		}
		rv = nng_stream_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, n->up_tls[i]);
	}
	if (rv == 0)
		rv = nng_aio_alloc(&aio, NULL, NULL);
	if (rv == 0) {
		nng_aio_set_timeout(aio, 5000);
		nng_stream_dialer_dial(d, aio);
		nng_aio_wait(aio);
		rv = nng_aio_result(aio);
	}
	if (rv == 0)
		*out = nng_aio_get_output(aio, 0);
	else
		snprintf(err, errlen, "cannot reach %s: %s", url, nng_strerror(rv));
	nng_aio_free(aio);
	nng_stream_dialer_free(d);
	return rv ? KB_EUNAVAILABLE : 0;
}

/* Dial address i, say hello, wait for the answer; the uplink on success. */
static int uplink_connect(struct kb_net *n, size_t i, char *err, size_t errlen)
{
	const char *url = n->up_urls[i];
	nng_stream *s;
	int rc = dial(n, i, &s, err, errlen);
	if (rc)
		return rc;
	struct conn *c = conn_new(n, s, true);
	if (c == NULL) {
		nng_stream_free(s);
		return KB_ENOMEM;
	}
	static const char *const up_groups[] = { "kubus:uplink" };
	struct kb_ident *who = kb_ident_new("uplink", "uplink", "", up_groups, 1);
	c->ep = who ? kb_bus_open_remote(n->bus, "uplink", who, &conn_ops, c, true) : NULL;
	kb_ident_unref(who);
	if (c->ep == NULL) {
		conn_close(c, "out of memory");
		return KB_ENOMEM;
	}
	atomic_fetch_add(&c->refs, 1); /* held while we wait below */
	c->tls = strncmp(url, "tls+tcp://", 10) == 0;
	/* Over TLS with no token, the certificate speaks: wait for the
	 * host's challenge (on_frame answers it). */
	if (n->up_token || !c->tls) {
		kb_body *hello = kb_mp_body("{s:s, s:s}", "token", n->up_token ? n->up_token : "",
		    "name", n->h->only_instance ? n->h->only_instance : n->h->name);
		c->hello_sent = true;
		conn_send_env(c, KB_ENV_HELLO, 1, NULL, NULL, NULL, 0, hello, 0, NULL);
		kb_body_unref(hello);
	}
	rx_start(c);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	pthread_mutex_lock(&c->mu);
	while (c->hello == 0)
		if (pthread_cond_timedwait(&c->cv, &c->mu, &ts) == ETIMEDOUT)
			break;
	int ok = c->hello;
	char why[256];
	snprintf(why, sizeof(why), "%s", c->hello == 0 ? "no answer to hello" : c->hello_err);
	pthread_mutex_unlock(&c->mu);
	if (ok != 1) {
		snprintf(err, errlen, "joining %s refused: %s", url, why);
		conn_close(c, why);
		conn_unref(c);
		return KB_EUNAUTHORIZED;
	}
	pthread_mutex_lock(&n->mu);
	n->up = c;
	n->up_cur = i;
	pthread_mutex_unlock(&n->mu);
	kb_bus_set_uplink(n->bus, c->ep);
	conn_unref(c);
	kb_clog(KB_LOG_INFO, "uplink connected", "url=%s", url);
	return 0;
}

static bool net_closing(struct kb_net *n)
{
	pthread_mutex_lock(&n->mu);
	bool closing = n->closing;
	pthread_mutex_unlock(&n->mu);
	return closing;
}

/* One round: each address once, from `first` on and around the list,
 * until one takes the hello. err gathers every address's reason. */
static int uplink_round(struct kb_net *n, size_t first, char *err, size_t errlen)
{
	int rc = KB_EUNAVAILABLE;
	size_t off = 0;
	err[0] = '\0';
	for (size_t k = 0; k < n->nup; k++) {
		char why[512];
		rc = uplink_connect(n, (first + k) % n->nup, why, sizeof(why));
		if (rc == 0)
			return 0;
		if (off < errlen) {
			int w = snprintf(err + off, errlen - off, "%s%s", off ? "; " : "", why);
			off += w > 0 ? (size_t)w : 0;
		}
		if (net_closing(n))
			break;
	}
	return rc;
}

int kb_net_join(struct kb_net *n, const char *const *urls, const char *token,
    char *err, size_t errlen)
{
	size_t nu = 0;
	while (urls && urls[nu])
		nu++;
	if (nu == 0 || n->up_urls) {
		snprintf(err, errlen, nu ? "the uplink is already set up" : "no address to join");
		return KB_EINVAL;
	}
	n->up_urls = calloc(nu + 1, sizeof(char *));
	n->up_tls = calloc(nu, sizeof(nng_tls_config *));
	if (n->up_urls == NULL || n->up_tls == NULL)
		return KB_ENOMEM;
	for (size_t i = 0; i < nu; i++)
		if ((n->up_urls[i] = kb_net_resolve_url(urls[i], n->h->data_dir)) == NULL)
			return KB_ENOMEM;
	n->nup = nu;
	n->up_token = token ? strdup(token) : NULL;
	/* The first address that answers, in the order given. */
	return uplink_round(n, 0, err, errlen);
}

const char *kb_net_uplink_url(struct kb_net *n)
{
	pthread_mutex_lock(&n->mu);
	const char *url = n->up ? n->up_urls[n->up_cur] : NULL;
	pthread_mutex_unlock(&n->mu);
	return url;
}

static void send_reg(void *arg, const char *name)
{
	/* The core's own services answer for this host only. */
	if (strcmp(name, "auth") == 0)
		return;
	conn_send_env(arg, KB_ENV_REG, 0, NULL, name, NULL, 0, NULL, 0, NULL);
}

static void send_sub(void *arg, const char *pattern)
{
	conn_send_env(arg, KB_ENV_SUB, 0, NULL, pattern, NULL, 0, NULL, 0, NULL);
}

static struct conn *uplink_ref(struct kb_net *n)
{
	pthread_mutex_lock(&n->mu);
	struct conn *c = n->up;
	if (c)
		atomic_fetch_add(&c->refs, 1);
	pthread_mutex_unlock(&n->mu);
	return c;
}

void kb_net_uplink_ready(struct kb_net *n)
{
	struct conn *c = uplink_ref(n);
	if (c == NULL)
		return;
	kb_bus_each_service(n->bus, NULL, send_reg, c);
	kb_bus_each_local_pattern(n->bus, send_sub, c);
	conn_send_env(c, KB_ENV_READY, 0, NULL, NULL, NULL, 0, NULL, 0, NULL);
	conn_unref(c);
}

struct watch_topics {
	char **v;
	size_t n, cap;
};

static void collect_watch(void *arg, const char *pattern)
{
	struct watch_topics *w = arg;
	if (strncmp(pattern, "api/watch/", 10) != 0 || strchr(pattern, '*'))
		return;
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 16;
		char **nv = realloc(w->v, cap * sizeof(char *));
		if (nv == NULL)
			return;
		w->v = nv;
		w->cap = cap;
	}
	if ((w->v[w->n] = strdup(pattern)) != NULL)
		w->n++;
}

/* After a reconnect the control plane holds none of the watches this
 * host's plugins had through it: end each as the API server would, with
 * an ERROR event on its topic, so every informer watches again at once
 * from the last resourceVersion it saw (and relists on 410). */
static void end_local_watches(struct kb_net *n)
{
	struct conn *c = uplink_ref(n);
	if (c == NULL)
		return;
	struct watch_topics w = { 0 };
	if (c->ep)
		kb_bus_each_local_pattern(n->bus, collect_watch, &w);
	for (size_t i = 0; i < w.n; i++) {
		const char *slash = strrchr(w.v[i], '/');
		kb_body *b = kb_mp_body("{s:I, s:s, s:{s:s, s:s, s:s, s:I, s:s, s:s}}",
		    "watch_id", (int64_t)strtoll(slash + 1, NULL, 10), "type", "ERROR",
		    "object", "apiVersion", "v1", "kind", "Status", "status", "Failure",
		    "code", (int64_t)503, "reason", "ServiceUnavailable", "message",
		    "the connection to the control plane was lost: watch again from the last resourceVersion");
		/* From the uplink's endpoint: delivered here only, never sent up. */
		if (b && kb_bus_publish(c->ep, NULL, w.v[i], b) != 0)
			kb_body_unref(b);
		free(w.v[i]);
	}
	if (w.n)
		kb_clog(KB_LOG_INFO, "watches ended after a reconnect", "count=%zu", w.n);
	free(w.v);
	conn_unref(c);
}

void kb_net_uplink_sub(struct kb_net *n, const char *pattern)
{
	struct conn *c = uplink_ref(n);
	if (c == NULL)
		return;
	send_sub(c, pattern);
	conn_unref(c);
}

/* Sleep ms, or less if the net starts closing. True when it is closing. */
static bool reconnect_sleep(struct kb_net *n, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&n->mu);
	while (!n->closing)
		if (pthread_cond_timedwait(&n->reconnect_cv, &n->mu, &ts) == ETIMEDOUT)
			break;
	bool closing = n->closing;
	pthread_mutex_unlock(&n->mu);
	return closing;
}

/* Up to a quarter more than ms, so that workers which lost the same host
 * do not all come back in the same instant. */
static int jitter(int ms)
{
	unsigned r = 0;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (unsigned)kb_now_ns();
	return ms + (int)(r % (unsigned)(ms / 4 + 1));
}

/* Rounds over the uplink's addresses, starting with the one after the
 * address that was lost (a host that just went away is the least likely
 * to answer; with one address that is the same one again), with an
 * exponential backoff between rounds, capped at RECONNECT_MAX_MS.
 * kb_net_free waits for this thread (n->reconnecting), so n stays valid
 * until the very end, where it must no longer be touched. */
static void *reconnect_main(void *arg)
{
	struct kb_net *n = arg;
	int delay_ms = RECONNECT_MIN_MS;
	pthread_mutex_lock(&n->mu);
	size_t first = (n->up_cur + 1) % n->nup;
	pthread_mutex_unlock(&n->mu);
	for (;;) {
		if (reconnect_sleep(n, jitter(delay_ms)))
			break;
		char err[1024];
		if (uplink_round(n, first, err, sizeof(err)) == 0) {
			pthread_mutex_lock(&n->mu);
			const char *url = n->up_urls[n->up_cur];
			pthread_mutex_unlock(&n->mu);
			kb_clog(KB_LOG_INFO, "uplink restored", "url=%s", url);
			kb_net_uplink_ready(n);
			end_local_watches(n);
			break;
		}
		kb_clog(KB_LOG_WARN, "uplink unreachable", "addresses=%zu retry_ms=%d reason=\"%s\"",
		    n->nup, delay_ms, err);
		delay_ms = delay_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : delay_ms * 2;
	}
	pthread_mutex_lock(&n->mu);
	n->reconnecting--;
	pthread_cond_broadcast(&n->reconnect_cv);
	pthread_mutex_unlock(&n->mu);
	return NULL;
}

static void reconnect_later(struct kb_net *n)
{
	/* An isolated child has no life of its own without its parent. */
	if (n->h->only_instance) {
		kb_clog(KB_LOG_ERROR, "uplink lost; an isolated plugin exits with its parent", NULL);
		_exit(3);
	}
	pthread_mutex_lock(&n->mu);
	if (n->closing) {
		pthread_mutex_unlock(&n->mu);
		return;
	}
	n->reconnecting++;
	pthread_mutex_unlock(&n->mu);
	pthread_t t;
	if (pthread_create(&t, NULL, reconnect_main, n) == 0) {
		pthread_detach(t);
		return;
	}
	pthread_mutex_lock(&n->mu);
	n->reconnecting--;
	pthread_mutex_unlock(&n->mu);
}

/* --- liveness ---------------------------------------------------------------------------- */

/* The uplink: ping every bus.keepalive; after bus.keepalive_timeout with
 * not one byte from the host, hang up (the reconnect rounds take over,
 * the next address first). An isolated child is left alone: its uplink
 * is its parent, over ipc, and it exits with it. */
static void keep_uplink(struct kb_net *n, int64_t now)
{
	struct kb_host *h = n->h;
	if (h->keepalive_ms <= 0 || h->only_instance)
		return;
	struct conn *c = uplink_ref(n);
	if (c == NULL)
		return;
	int64_t quiet_ms = (now - atomic_load(&c->last_rx_ns)) / 1000000;
	if (c->ping_ok && quiet_ms >= h->keepalive_timeout_ms) {
		char why[128];
		snprintf(why, sizeof(why), "no word from the control plane for %lld ms",
		    (long long)quiet_ms);
		pthread_mutex_lock(&n->mu);
		const char *url = n->up_urls[n->up_cur];
		pthread_mutex_unlock(&n->mu);
		kb_clog(KB_LOG_WARN, "uplink silent: hanging up", "url=%s quiet_ms=%lld",
		    url, (long long)quiet_ms);
		conn_close(c, why);
	} else if (c->ping_ok && now - n->last_ping_ns >= h->keepalive_ms * 1000000) {
		n->last_ping_ns = now;
		kb_body *b = kb_mp_body("{s:I}", "t", h->keepalive_timeout_ms);
		conn_send_env(c, KB_ENV_PING, ++n->ping_id, NULL, NULL, NULL, 0, b, 0, NULL);
		kb_body_unref(b);
	}
	conn_unref(c);
}

/* Peers that pinged and then went quiet longer than they said they would
 * be: a dead or cut-off worker. Closing releases what it registered. */
static void keep_peers(struct kb_net *n, int64_t now)
{
	for (;;) {
		struct conn *c;
		int64_t quiet_ms = 0;
		pthread_mutex_lock(&n->mu);
		for (c = n->conns; c; c = c->next) {
			int64_t limit = atomic_load(&c->silence_ms);
			quiet_ms = (now - atomic_load(&c->last_rx_ns)) / 1000000;
			if (!c->uplink && limit > 0 && quiet_ms >= limit)
				break;
		}
		if (c) {
			atomic_fetch_add(&c->refs, 1);
			/* Found once: it leaves n->conns only inside conn_close. */
			atomic_store(&c->silence_ms, 0);
		}
		pthread_mutex_unlock(&n->mu);
		if (c == NULL)
			return;
		char why[128];
		snprintf(why, sizeof(why), "silent for %lld ms", (long long)quiet_ms);
		conn_close(c, why);
		conn_unref(c);
	}
}

/* Ticks at the ping interval (at most 1 s, so that peers' limits are
 * kept to within a second), until kb_net_free. */
static void *keeper_main(void *arg)
{
	struct kb_net *n = arg;
	pthread_mutex_lock(&n->mu);
	while (!n->closing) {
		int64_t tick = n->h->keepalive_ms > 0 && n->h->keepalive_ms < 1000 ?
		    n->h->keepalive_ms : 1000;
		if (tick < 10)
			tick = 10;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(tick % 1000) * 1000000;
		ts.tv_sec += tick / 1000 + ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&n->keep_cv, &n->mu, &ts);
		if (n->closing)
			break;
		pthread_mutex_unlock(&n->mu);
		int64_t now = kb_now_ns();
		keep_uplink(n, now);
		keep_peers(n, now);
		pthread_mutex_lock(&n->mu);
	}
	pthread_mutex_unlock(&n->mu);
	return NULL;
}

/* --- life -------------------------------------------------------------------------------- */

struct kb_net *kb_net_new(struct kb_host *h)
{
	struct kb_net *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return NULL;
	n->h = h;
	n->bus = h->bus;
	pthread_mutex_init(&n->mu, NULL);
	pthread_cond_init(&n->reap_cv, NULL);
	pthread_cond_init(&n->reconnect_cv, NULL);
	pthread_cond_init(&n->keep_cv, NULL);
	if (pthread_create(&n->reaper, NULL, reaper_main, n) != 0) {
		free(n);
		return NULL;
	}
	if (pthread_create(&n->keeper, NULL, keeper_main, n) != 0) {
		pthread_mutex_lock(&n->mu);
		n->closing = true;
		pthread_cond_signal(&n->reap_cv);
		pthread_mutex_unlock(&n->mu);
		pthread_join(n->reaper, NULL);
		free(n);
		return NULL;
	}
	return n;
}

void kb_net_free(struct kb_net *n)
{
	if (n == NULL)
		return;
	pthread_mutex_lock(&n->mu);
	n->closing = true;
	struct listener *ls = n->listeners;
	n->listeners = NULL;
	/* A reconnect thread still uses n: wake it and wait for it (at most
	 * one dial and hello). An uplink it made is closed below. */
	pthread_cond_broadcast(&n->reconnect_cv);
	pthread_cond_signal(&n->keep_cv);
	while (n->reconnecting > 0)
		pthread_cond_wait(&n->reconnect_cv, &n->mu);
	pthread_mutex_unlock(&n->mu);
	pthread_join(n->keeper, NULL);
	while (ls) {
		struct listener *l = ls;
		ls = l->next;
		nng_stream_listener_close(l->l);
		nng_aio_stop(l->acc);
		nng_aio_free(l->acc);
		nng_stream_listener_free(l->l);
		free(l->url);
		free(l);
	}
	for (;;) {
		pthread_mutex_lock(&n->mu);
		struct conn *c = n->conns;
		if (c)
			atomic_fetch_add(&c->refs, 1);
		pthread_mutex_unlock(&n->mu);
		if (c == NULL)
			break;
		conn_close(c, "host stopping");
		conn_unref(c);
	}
	pthread_mutex_lock(&n->mu);
	pthread_cond_signal(&n->reap_cv);
	pthread_mutex_unlock(&n->mu);
	pthread_join(n->reaper, NULL);
	if (n->tls_server)
		nng_tls_config_free(n->tls_server);
	for (size_t i = 0; i < n->nup; i++)
		if (n->up_tls[i])
			nng_tls_config_free(n->up_tls[i]);
	free(n->up_tls);
	for (size_t i = 0; n->up_urls && n->up_urls[i]; i++)
		free(n->up_urls[i]);
	free(n->up_urls);
	free(n->up_token);
	pthread_mutex_destroy(&n->mu);
	pthread_cond_destroy(&n->reap_cv);
	pthread_cond_destroy(&n->reconnect_cv);
	pthread_cond_destroy(&n->keep_cv);
	free(n);
}
