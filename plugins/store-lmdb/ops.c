/* ops.c — the `store` service: decoding requests, answering them.
 *
 * Dispatch thread. Reads are answered here from an LMDB snapshot (cheap,
 * never blocks on writers). Writes are checked here, handed to the engine's
 * committer and answered from its thread once durable (write_done). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kubus/mp.h>

#include "store_lmdb.h"

/* --- packing --------------------------------------------------------------- */

void slmdb_pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

void slmdb_pack_kv(msgpack_packer *pk, const struct mvcc_kv *kv)
{
	msgpack_pack_map(pk, kv->value ? 5 : 4);
	slmdb_pack_str(pk, "key");
	msgpack_pack_str(pk, kv->key_len);
	msgpack_pack_str_body(pk, kv->key, kv->key_len);
	if (kv->value) {
		slmdb_pack_str(pk, "value");
		msgpack_pack_bin(pk, kv->value_len);
		msgpack_pack_bin_body(pk, kv->value, kv->value_len);
	}
	slmdb_pack_str(pk, "create_rev");
	msgpack_pack_int64(pk, kv->create_rev);
	slmdb_pack_str(pk, "mod_rev");
	msgpack_pack_int64(pk, kv->mod_rev);
	slmdb_pack_str(pk, "version");
	msgpack_pack_int64(pk, kv->version);
}

void slmdb_pack_kv_or_nil(msgpack_packer *pk, bool has,
    const struct mvcc_kv *kv)
{
	if (has)
		slmdb_pack_kv(pk, kv);
	else
		msgpack_pack_nil(pk);
}

/* A reply's buffer sized to what it will hold (kb_body_from_sbuf copies a
 * body out of a buffer much larger than its bytes, and an sbuffer starts
 * at 8 KiB); it still grows past `cap` when needed. */
static void sb_init(msgpack_sbuffer *sb, size_t cap)
{
	msgpack_sbuffer_init(sb);
	if ((sb->data = malloc(cap)))
		sb->alloc = cap;
}

/* At most what slmdb_pack_kv writes for kv (its fixed part is under 100
 * bytes), or a nil. */
static size_t kv_max(bool has, const struct mvcc_kv *kv)
{
	return has ? 100 + kv->key_len + (kv->value ? kv->value_len : 0) : 1;
}

static void reply_sbuf(kb_msg *req, msgpack_sbuffer *sb)
{
	kb_body *b = kb_body_from_sbuf(sb);
	msgpack_sbuffer_destroy(sb);
	if (!b) {
		kb_reply_err(req, KB_ENOMEM, "out of memory");
		return;
	}
	if (kb_reply(req, b))
		kb_body_unref(b);
}

static void reply_err_sbuf(kb_msg *req, int code, msgpack_sbuffer *sb,
    const char *msg)
{
	kb_body *b = kb_body_from_sbuf(sb);
	msgpack_sbuffer_destroy(sb);
	if (!b) {
		kb_reply_err(req, code, "%s", msg);
		return;
	}
	if (kb_reply_err_body(req, code, b, "%s", msg))
		kb_body_unref(b);
}

static void reply_expired(kb_msg *req, int64_t compact, const char *what)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char msg[160];

	sb_init(&sb, 64);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1);
	slmdb_pack_str(&pk, "compact_rev");
	msgpack_pack_int64(&pk, compact);
	snprintf(msg, sizeof msg,
	    "%s: the revision asked for has been compacted (compact_rev %lld)",
	    what, (long long)compact);
	reply_err_sbuf(req, KB_EEXPIRED, &sb, msg);
}

/* --- decoding -------------------------------------------------------------- */

static const char *type_name(const msgpack_object *o)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return "nil";
	case MSGPACK_OBJECT_BOOLEAN:
		return "bool";
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return "int";
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return "float";
	case MSGPACK_OBJECT_STR:
		return "str";
	case MSGPACK_OBJECT_BIN:
		return "bin";
	case MSGPACK_OBJECT_ARRAY:
		return "array";
	case MSGPACK_OBJECT_MAP:
		return "map";
	default:
		return "ext";
	}
}

struct dec {
	kb_msg *req;
	char err[200];
};

static bool bad(struct dec *d, const char *fmt, const char *a, const char *b)
{
	snprintf(d->err, sizeof d->err, fmt, a, b);
	return false;
}

static const msgpack_object *field(const msgpack_object *b, const char *k)
{
	const msgpack_object *o = kb_mp_key(b, k);
	return o && o->type != MSGPACK_OBJECT_NIL ? o : NULL;
}

static bool need_key(struct dec *d, const msgpack_object *b, const char *name,
    const char **k, size_t *klen)
{
	const msgpack_object *o = kb_mp_key(b, name);
	if (!o)
		return bad(d, "`%s` is required%s", name, "");
	if (o->type != MSGPACK_OBJECT_STR)
		return bad(d, "`%s` must be a str, not %s", name, type_name(o));
	if (o->via.str.size == 0)
		return bad(d, "`%s` must not be empty%s", name, "");
	if (o->via.str.size > MVCC_KEY_MAX)
		return bad(d, "`%s` is longer than 511 bytes%s", name, "");
	*k = o->via.str.ptr;
	*klen = o->via.str.size;
	return true;
}

static bool opt_str(struct dec *d, const msgpack_object *b, const char *name,
    const char **s, size_t *len)
{
	const msgpack_object *o = field(b, name);
	if (!o)
		return true;
	if (o->type != MSGPACK_OBJECT_STR)
		return bad(d, "`%s` must be a str, not %s", name, type_name(o));
	*s = o->via.str.ptr;
	*len = o->via.str.size;
	return true;
}

static bool opt_int(struct dec *d, const msgpack_object *b, const char *name,
    int64_t *v, bool *present)
{
	const msgpack_object *o = field(b, name);
	if (present)
		*present = false;
	if (!o)
		return true;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    o->via.u64 <= INT64_MAX)
		*v = (int64_t)o->via.u64;
	else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		*v = o->via.i64;
	else
		return bad(d, "`%s` must be an int, not %s", name,
		    type_name(o));
	if (*v < 0)
		return bad(d, "`%s` must not be negative%s", name, "");
	if (present)
		*present = true;
	return true;
}

static bool opt_bool(struct dec *d, const msgpack_object *b, const char *name,
    bool *v)
{
	const msgpack_object *o = field(b, name);
	if (!o)
		return true;
	if (o->type != MSGPACK_OBJECT_BOOLEAN)
		return bad(d, "`%s` must be a bool, not %s", name,
		    type_name(o));
	*v = o->via.boolean;
	return true;
}

static bool need_value(struct dec *d, const msgpack_object *b, const void **v,
    size_t *len)
{
	const msgpack_object *o = kb_mp_key(b, "value");
	if (!o)
		return bad(d, "`value` is required%s%s", "", "");
	if (o->type != MSGPACK_OBJECT_BIN)
		return bad(d, "`value` must be bin, not %s%s", type_name(o),
		    "");
	*v = o->via.bin.ptr;
	*len = o->via.bin.size;
	return true;
}

/* --- reads ----------------------------------------------------------------- */

static void op_revision(struct slmdb *s, kb_msg *req)
{
	struct mvcc_reader *r;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc;

	if ((rc = mvcc_read_begin(s->m, &r))) {
		kb_reply_err(req, rc, "cannot read the store: %s",
		    kb_strerror(rc));
		return;
	}
	sb_init(&sb, 64);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	slmdb_pack_str(&pk, "rev");
	msgpack_pack_int64(&pk, mvcc_reader_rev(r));
	slmdb_pack_str(&pk, "compact_rev");
	msgpack_pack_int64(&pk, mvcc_reader_compact_rev(r));
	mvcc_read_end(r);
	reply_sbuf(req, &sb);
}

static void read_failed(kb_msg *req, struct mvcc_reader *r, int rc, int64_t rev,
    const char *what)
{
	if (rc == KB_EEXPIRED)
		reply_expired(req, mvcc_reader_compact_rev(r), what);
	else if (rc == KB_EINVAL)
		kb_reply_err(req, rc,
		    "%s: revision %lld is in the future "
		    "(current %lld)",
		    what, (long long)rev, (long long)mvcc_reader_rev(r));
	else
		kb_reply_err(req, rc, "%s failed: %s", what, kb_strerror(rc));
}

static void op_get(struct slmdb *s, kb_msg *req, const msgpack_object *b)
{
	struct dec d = { req, "" };
	const char *k;
	size_t klen;
	int64_t rev = 0;
	struct mvcc_reader *r;
	struct mvcc_kv kv;
	bool found;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc;

	if (!need_key(&d, b, "key", &k, &klen) ||
	    !opt_int(&d, b, "rev", &rev, NULL)) {
		kb_reply_err(req, KB_EINVAL, "get: %s", d.err);
		return;
	}
	if ((rc = mvcc_read_begin(s->m, &r))) {
		kb_reply_err(req, rc, "get: %s", kb_strerror(rc));
		return;
	}
	if ((rc = mvcc_get(r, k, klen, rev, &kv, &found))) {
		read_failed(req, r, rc, rev, "get");
		mvcc_read_end(r);
		return;
	}
	sb_init(&sb, 32 + kv_max(found, &kv));
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	slmdb_pack_str(&pk, "kv");
	slmdb_pack_kv_or_nil(&pk, found, &kv);
	slmdb_pack_str(&pk, "rev");
	msgpack_pack_int64(&pk, rev > 0 ? rev : mvcc_reader_rev(r));
	mvcc_read_end(r);
	reply_sbuf(req, &sb);
}

struct kvvec {
	struct mvcc_kv *v;
	size_t n, cap;
};

static int kvvec_add(void *arg, const struct mvcc_kv *kv)
{
	struct kvvec *vec = arg;
	if (vec->n == vec->cap) {
		size_t cap = vec->cap ? vec->cap * 2 : 64;
		struct mvcc_kv *n = realloc(vec->v, cap * sizeof *n);
		if (!n)
			return KB_ENOMEM;
		vec->v = n;
		vec->cap = cap;
	}
	vec->v[vec->n++] = *kv;
	return 0;
}

static void op_range(struct slmdb *s, kb_msg *req, const msgpack_object *b)
{
	struct dec d = { req, "" };
	struct mvcc_range q = { .prefix = "" };
	const char *cont = NULL, *prefix = "";
	size_t contlen = 0, plen = 0;
	struct mvcc_reader *r;
	struct kvvec vec = { 0 };
	int64_t count = 0, rev;
	bool more = false;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc;

	if (!opt_str(&d, b, "prefix", &prefix, &plen) ||
	    !opt_int(&d, b, "limit", &q.limit, NULL) ||
	    !opt_str(&d, b, "continue", &cont, &contlen) ||
	    !opt_bool(&d, b, "count_only", &q.count_only) ||
	    !opt_bool(&d, b, "keys_only", &q.keys_only) ||
	    !opt_int(&d, b, "rev", &q.rev, NULL)) {
		kb_reply_err(req, KB_EINVAL, "range: %s", d.err);
		return;
	}
	q.prefix = prefix;
	q.prefix_len = plen;
	if (cont) {
		/* "<rev>:<last key>": resume after that key, at that rev */
		size_t i = 0;
		int64_t crev = 0;
		while (i < contlen && cont[i] >= '0' && cont[i] <= '9' &&
		    crev < INT64_MAX / 10)
			crev = crev * 10 + (cont[i++] - '0');
		const char *after = cont + i + 1;
		size_t alen = i < contlen ? contlen - i - 1 : 0;
		if (i == 0 || i >= contlen || cont[i] != ':' || crev <= 0 ||
		    alen == 0 || alen < plen || memcmp(after, prefix, plen)) {
			kb_reply_err(req, KB_EINVAL,
			    "range: `continue` is not "
			    "a token this store gave for prefix `%.*s`",
			    (int)plen, prefix);
			return;
		}
		q.after = after;
		q.after_len = alen;
		q.rev = crev;
	}
	if ((rc = mvcc_read_begin(s->m, &r))) {
		kb_reply_err(req, rc, "range: %s", kb_strerror(rc));
		return;
	}
	rev = q.rev > 0 ? q.rev : mvcc_reader_rev(r);
	if ((rc = mvcc_range(r, &q, kvvec_add, &vec, &count, &more))) {
		read_failed(req, r, rc, q.rev, "range");
		mvcc_read_end(r);
		free(vec.v);
		return;
	}
	size_t cap = 128 + plen + contlen + 24;
	for (size_t i = 0; i < vec.n; i++)
		cap += kv_max(true, &vec.v[i]) + vec.v[i].key_len;
	sb_init(&sb, cap);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 5);
	slmdb_pack_str(&pk, "kvs");
	msgpack_pack_array(&pk, vec.n);
	for (size_t i = 0; i < vec.n; i++)
		slmdb_pack_kv(&pk, &vec.v[i]);
	slmdb_pack_str(&pk, "count");
	msgpack_pack_int64(&pk, count);
	slmdb_pack_str(&pk, "more");
	more ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
	slmdb_pack_str(&pk, "continue");
	if (more && vec.n) {
		const struct mvcc_kv *last = &vec.v[vec.n - 1];
		char num[24];
		int nl = snprintf(num, sizeof num, "%lld:", (long long)rev);
		msgpack_pack_str(&pk, (size_t)nl + last->key_len);
		msgpack_pack_str_body(&pk, num, (size_t)nl);
		msgpack_pack_str_body(&pk, last->key, last->key_len);
	} else {
		msgpack_pack_nil(&pk);
	}
	slmdb_pack_str(&pk, "rev");
	msgpack_pack_int64(&pk, rev);
	mvcc_read_end(r);
	free(vec.v);
	reply_sbuf(req, &sb);
}

/* --- writes ---------------------------------------------------------------- */

enum {
	W_PUT = 1,
	W_DELETE,
	W_TXN,
	W_COMPACT
};

struct wreq {
	struct mvcc_write w; /* first: the engine hands it back */
	kb_msg *req;
	int kind;
	const char *key; /* put/delete: for messages */
	size_t klen;
	int64_t cond;
	struct mvcc_op op, fop;
	struct mvcc_cmp cmp;
	struct mvcc_op *ops; /* txn: success then failure */
	struct mvcc_cmp *cmps;
};

static void wreq_free(struct wreq *q)
{
	mvcc_write_release(&q->w);
	free(q->ops);
	free(q->cmps);
	free(q);
}

static void pack_conflict(struct wreq *q)
{
	struct mvcc_write *w = &q->w;
	const struct mvcc_op_res *cur = w->nres ? &w->res[0] : NULL;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char msg[200];

	sb_init(&sb, 32 + (cur ? kv_max(cur->has_kv, &cur->kv) : 1));
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 2);
	slmdb_pack_str(&pk, "kv");
	if (cur && cur->has_kv)
		slmdb_pack_kv(&pk, &cur->kv);
	else
		msgpack_pack_nil(&pk);
	slmdb_pack_str(&pk, "rev");
	msgpack_pack_int64(&pk, w->rev);
	if (cur && cur->has_kv)
		snprintf(msg, sizeof msg,
		    "%s of `%.*s`: expected mod_rev %lld, "
		    "found %lld",
		    q->kind == W_PUT ? "put" : "delete", (int)q->klen, q->key,
		    (long long)q->cond, (long long)cur->kv.mod_rev);
	else
		snprintf(msg, sizeof msg,
		    "%s of `%.*s`: expected mod_rev %lld, "
		    "found no such key",
		    q->kind == W_PUT ? "put" : "delete", (int)q->klen, q->key,
		    (long long)q->cond);
	reply_err_sbuf(q->req, KB_ECONFLICT, &sb, msg);
}

/* Committer thread, after the commit. */
static void write_done(struct mvcc_write *w)
{
	struct wreq *q = (struct wreq *)w;
	msgpack_sbuffer sb;
	msgpack_packer pk;

	if (w->rc) {
		kb_reply_err(q->req, w->rc, "%s", w->err);
		goto out;
	}
	if ((q->kind == W_PUT || q->kind == W_DELETE) && !w->succeeded) {
		pack_conflict(q);
		goto out;
	}
	size_t cap = 64;
	for (size_t i = 0; i < w->nres; i++)
		cap += 48 + kv_max(w->res[i].has_kv, &w->res[i].kv) +
		    kv_max(w->res[i].has_prev, &w->res[i].prev);
	sb_init(&sb, cap);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	switch (q->kind) {
	case W_PUT: {
		const struct mvcc_op_res *r = &w->res[0];
		msgpack_pack_map(&pk, 3);
		slmdb_pack_str(&pk, "rev");
		msgpack_pack_int64(&pk, r->rev);
		slmdb_pack_str(&pk, "kv");
		slmdb_pack_kv(&pk, &r->kv);
		slmdb_pack_str(&pk, "prev");
		slmdb_pack_kv_or_nil(&pk, r->has_prev, &r->prev);
		break;
	}
	case W_DELETE: {
		const struct mvcc_op_res *r = &w->res[0];
		msgpack_pack_map(&pk, 3);
		slmdb_pack_str(&pk, "rev");
		msgpack_pack_int64(&pk, w->rev);
		slmdb_pack_str(&pk, "deleted");
		msgpack_pack_int(&pk, r->deleted);
		slmdb_pack_str(&pk, "prev");
		slmdb_pack_kv_or_nil(&pk, r->has_prev, &r->prev);
		break;
	}
	case W_TXN:
		msgpack_pack_map(&pk, 3);
		slmdb_pack_str(&pk, "succeeded");
		w->succeeded ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
		slmdb_pack_str(&pk, "rev");
		msgpack_pack_int64(&pk, w->rev);
		slmdb_pack_str(&pk, "results");
		msgpack_pack_array(&pk, w->nres);
		for (size_t i = 0; i < w->nres; i++) {
			const struct mvcc_op_res *r = &w->res[i];
			msgpack_pack_map(&pk, 1);
			if (r->type == MVCC_PUT) {
				slmdb_pack_str(&pk, "put");
				msgpack_pack_map(&pk, 1);
				slmdb_pack_str(&pk, "rev");
				msgpack_pack_int64(&pk, r->rev);
			} else if (r->type == MVCC_DELETE) {
				slmdb_pack_str(&pk, "delete");
				msgpack_pack_map(&pk, 2);
				slmdb_pack_str(&pk, "deleted");
				msgpack_pack_int(&pk, r->deleted);
				slmdb_pack_str(&pk, "prev");
				slmdb_pack_kv_or_nil(&pk, r->has_prev,
				    &r->prev);
			} else {
				slmdb_pack_str(&pk, "get");
				msgpack_pack_map(&pk, 1);
				slmdb_pack_str(&pk, "kv");
				slmdb_pack_kv_or_nil(&pk, r->has_kv, &r->kv);
			}
		}
		break;
	case W_COMPACT:
		msgpack_pack_map(&pk, 1);
		slmdb_pack_str(&pk, "compact_rev");
		msgpack_pack_int64(&pk, w->compacted);
		break;
	}
	reply_sbuf(q->req, &sb);
out:
	wreq_free(q);
}

static void submit(struct slmdb *s, struct wreq *q, const char *what)
{
	int rc;

	q->w.done = write_done;
	if ((rc = mvcc_submit(s->m, &q->w))) {
		kb_reply_err(q->req, rc, "%s: %s", what, q->w.err);
		wreq_free(q);
	}
}

static struct wreq *wreq_new(kb_msg *req, int kind)
{
	struct wreq *q = calloc(1, sizeof *q);
	if (!q) {
		kb_reply_err(req, KB_ENOMEM, "out of memory");
		return NULL;
	}
	q->req = req;
	q->kind = kind;
	q->w.kind = kind == W_COMPACT ? MVCC_W_COMPACT : MVCC_W_TXN;
	return q;
}

/* put and delete: one op, and a compare on mod_rev when asked, whose
 * failure branch reads the key back for the Conflict body */
static void op_putdel(struct slmdb *s, kb_msg *req, const msgpack_object *b,
    int kind)
{
	const char *what = kind == W_PUT ? "put" : "delete";
	struct dec d = { req, "" };
	const void *val = NULL;
	size_t vlen = 0;
	bool prev = false, cond;
	struct wreq *q;

	if (!(q = wreq_new(req, kind)))
		return;
	q->cond = -1;
	if (!need_key(&d, b, "key", &q->key, &q->klen) ||
	    (kind == W_PUT && !need_value(&d, b, &val, &vlen)) ||
	    !opt_int(&d, b, "if_mod_rev", &q->cond, &cond) ||
	    !opt_bool(&d, b, "prev", &prev)) {
		kb_reply_err(req, KB_EINVAL, "%s: %s", what, d.err);
		wreq_free(q);
		return;
	}
	q->op = (struct mvcc_op){ kind == W_PUT ? MVCC_PUT : MVCC_DELETE,
		q->key, q->klen, val, vlen };
	q->w.success = &q->op;
	q->w.nsuccess = 1;
	q->w.want_prev = prev;
	if (cond) {
		q->cmp = (struct mvcc_cmp){ q->key, q->klen, MVCC_MOD, MVCC_EQ,
			q->cond };
		q->fop = (struct mvcc_op){ MVCC_GET, q->key, q->klen, NULL, 0 };
		q->w.cmp = &q->cmp;
		q->w.ncmp = 1;
		q->w.failure = &q->fop;
		q->w.nfailure = 1;
	}
	submit(s, q, what);
}

static bool dec_cmp(struct dec *d, const msgpack_object *o, struct mvcc_cmp *c)
{
	static const char *targets[] = { "mod", "create", "version", "exists" };
	static const char *ops[] = { "=", "!=", "<", ">" };
	const msgpack_object *v;

	if (o->type != MSGPACK_OBJECT_MAP)
		return bad(d, "a compare must be a map, not %s%s", type_name(o),
		    "");
	const char *k;
	if (!need_key(d, o, "key", &k, &c->key_len))
		return false;
	c->key = k;
	c->target = 0;
	for (int i = 0; i < 4; i++)
		if (kb_mp_streq(o, "target", targets[i]))
			c->target = MVCC_MOD + i;
	if (!c->target)
		return bad(d,
		    "compare `target` must be mod, create, version "
		    "or exists%s%s",
		    "", "");
	c->op = 0;
	for (int i = 0; i < 4; i++)
		if (kb_mp_streq(o, "op", ops[i]))
			c->op = MVCC_EQ + i;
	if (!c->op)
		return bad(d, "compare `op` must be =, !=, < or >%s%s", "", "");
	v = kb_mp_key(o, "value");
	if (v && v->type == MSGPACK_OBJECT_BOOLEAN && c->target == MVCC_EXISTS)
		c->value = v->via.boolean;
	else if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    v->via.u64 <= INT64_MAX)
		c->value = (int64_t)v->via.u64;
	else if (v && v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		c->value = v->via.i64;
	else
		return bad(d,
		    "compare `value` must be an int (a bool for "
		    "exists), not %s%s",
		    v ? type_name(v) : "nothing", "");
	return true;
}

static bool dec_op(struct dec *d, const msgpack_object *o, struct mvcc_op *op)
{
	const msgpack_object *in;
	const char *name;

	if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size != 1 ||
	    o->via.map.ptr[0].key.type != MSGPACK_OBJECT_STR)
		return bad(d,
		    "an op must be a map with one key: put, delete "
		    "or get%s%s",
		    "", "");
	in = &o->via.map.ptr[0].val;
	if (kb_mp_is(&o->via.map.ptr[0].key, "put"))
		op->type = MVCC_PUT, name = "put";
	else if (kb_mp_is(&o->via.map.ptr[0].key, "delete"))
		op->type = MVCC_DELETE, name = "delete";
	else if (kb_mp_is(&o->via.map.ptr[0].key, "get"))
		op->type = MVCC_GET, name = "get";
	else
		return bad(d, "an op must be put, delete or get%s%s", "", "");
	if (in->type != MSGPACK_OBJECT_MAP)
		return bad(d, "op %s must be a map, not %s", name,
		    type_name(in));
	const char *k;
	if (!need_key(d, in, "key", &k, &op->key_len))
		return false;
	op->key = k;
	if (op->type == MVCC_PUT &&
	    !need_value(d, in, &op->value, &op->value_len))
		return false;
	return true;
}

static bool opt_array(struct dec *d, const msgpack_object *b, const char *name,
    const msgpack_object_array **a)
{
	static const msgpack_object_array empty = { 0, NULL };
	const msgpack_object *o = field(b, name);
	*a = &empty;
	if (!o)
		return true;
	if (o->type != MSGPACK_OBJECT_ARRAY)
		return bad(d, "`%s` must be an array, not %s", name,
		    type_name(o));
	*a = &o->via.array;
	return true;
}

static void op_txn(struct slmdb *s, kb_msg *req, const msgpack_object *b)
{
	struct dec d = { req, "" };
	const msgpack_object_array *ca, *sa, *fa;
	struct wreq *q;
	size_t nops;

	if (!(q = wreq_new(req, W_TXN)))
		return;
	if (!opt_array(&d, b, "compare", &ca) ||
	    !opt_array(&d, b, "success", &sa) ||
	    !opt_array(&d, b, "failure", &fa))
		goto bad;
	nops = (size_t)sa->size + fa->size;
	if ((ca->size && !(q->cmps = calloc(ca->size, sizeof *q->cmps))) ||
	    (nops && !(q->ops = calloc(nops, sizeof *q->ops)))) {
		kb_reply_err(req, KB_ENOMEM, "out of memory");
		wreq_free(q);
		return;
	}
	for (uint32_t i = 0; i < ca->size; i++)
		if (!dec_cmp(&d, &ca->ptr[i], &q->cmps[i]))
			goto bad;
	for (uint32_t i = 0; i < sa->size; i++)
		if (!dec_op(&d, &sa->ptr[i], &q->ops[i]))
			goto bad;
	for (uint32_t i = 0; i < fa->size; i++)
		if (!dec_op(&d, &fa->ptr[i], &q->ops[sa->size + i]))
			goto bad;
	q->w.cmp = q->cmps;
	q->w.ncmp = ca->size;
	q->w.success = q->ops;
	q->w.nsuccess = sa->size;
	q->w.failure = q->ops ? q->ops + sa->size : NULL;
	q->w.nfailure = fa->size;
	q->w.want_prev = true;
	submit(s, q, "txn");
	return;
bad:
	kb_reply_err(req, KB_EINVAL, "txn: %s", d.err);
	wreq_free(q);
}

static void op_compact(struct slmdb *s, kb_msg *req, const msgpack_object *b)
{
	struct dec d = { req, "" };
	struct wreq *q;
	bool present;

	if (!(q = wreq_new(req, W_COMPACT)))
		return;
	if (!opt_int(&d, b, "rev", &q->w.compact_rev, &present) ||
	    (!present && !bad(&d, "`rev` is required%s%s", "", "")) ||
	    (q->w.compact_rev == 0 &&
		!bad(&d, "`rev` must be positive%s%s", "", ""))) {
		kb_reply_err(req, KB_EINVAL, "compact: %s", d.err);
		wreq_free(q);
		return;
	}
	submit(s, q, "compact");
}

/* --- the service ------------------------------------------------------------ */

void slmdb_serve(void *arg, kb_msg *req)
{
	static const msgpack_object empty = { .type = MSGPACK_OBJECT_MAP };
	struct slmdb *s = arg;
	const char *op = kb_msg_op(req);
	const msgpack_object *b = kb_msg_body(req);

	if (b && b->type == MSGPACK_OBJECT_NIL)
		b = &empty;
	if (!b || b->type != MSGPACK_OBJECT_MAP) {
		kb_reply_err(req, KB_EINVAL,
		    "%s: the body must be a map, not %s", op,
		    b ? type_name(b) : "malformed msgpack");
		return;
	}
	/* Not waiting: stop holds it while the committer ends, and this may
	 * run on any plugin's thread (kb_serve_inline), even that one's. */
	if (pthread_rwlock_tryrdlock(&s->life) != 0) {
		kb_reply_err(req, KB_EUNAVAILABLE, "the store is stopping");
		return;
	}
	if (!s->m)
		kb_reply_err(req, KB_EUNAVAILABLE, "the store is stopping");
	else if (!strcmp(op, "get"))
		op_get(s, req, b);
	else if (!strcmp(op, "range"))
		op_range(s, req, b);
	else if (!strcmp(op, "put"))
		op_putdel(s, req, b, W_PUT);
	else if (!strcmp(op, "delete"))
		op_putdel(s, req, b, W_DELETE);
	else if (!strcmp(op, "txn"))
		op_txn(s, req, b);
	else if (!strcmp(op, "revision"))
		op_revision(s, req);
	else if (!strcmp(op, "watch"))
		watch_handle(s->hub, req, b);
	else if (!strcmp(op, "unwatch"))
		unwatch_handle(s->hub, req, b);
	else if (!strcmp(op, "compact"))
		op_compact(s, req, b);
	else
		kb_reply_err(req, KB_EBADREQUEST,
		    "unknown store op `%s`; "
		    "expected get, range, put, delete, txn, watch, unwatch, "
		    "compact or revision",
		    op);
	pthread_rwlock_unlock(&s->life);
}
