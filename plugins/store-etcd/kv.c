/* plugins/store-etcd/kv.c — the store ops of kubus/store.h on etcd v3.
 *
 * Keys and the key layout are the callers' (the same as store-lmdb's); the
 * revisions are etcd's. Every write goes through /v3/kv/txn so that one
 * round trip both applies it under its condition and reads back what the
 * reply needs (the new KV's create_rev and version, or the current value
 * for a Conflict).
 *
 * Retried writes (see client.c): a conditional put or delete is repeated
 * with the same compare, so it cannot apply twice. If the repeat fails its
 * compare and an earlier attempt may have applied, the key's history tells
 * whether the change it found is ours (put: the value is ours and the state
 * just before it matched the condition); if so the reply is a success.
 * An unconditional put whose reply was lost is sent again: the key ends up
 * with the value asked for, but possibly written twice (two revisions, two
 * watch events). An unconditional delete repeated after its first attempt
 * applied answers deleted 0. A txn is never repeated once it may have
 * reached etcd: its caller gets Timeout ("outcome unknown").
 */
#include "etcd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- request validation ------------------------------------------------ */

struct bytes {
	const char *p;
	size_t n;
};

static int req_key(const msgpack_object *req, const char *field,
    struct bytes *k, bool allow_empty, struct ec_out *o)
{
	const msgpack_object *v = ec_mp_key(req, field);
	if (!v || v->type != MSGPACK_OBJECT_STR)
		return ec_out_err(o, KB_EINVAL, "`%s`: expected a string, got %s",
		    field, v ? "another type" : "nothing");
	if (!allow_empty && v->via.str.size == 0)
		return ec_out_err(o, KB_EINVAL, "`%s`: expected a non-empty key",
		    field);
	/* The same limit as store-lmdb's, so both stores take the same keys. */
	if (v->via.str.size > 511)
		return ec_out_err(o, KB_EINVAL, "`%s` is longer than 511 bytes", field);
	k->p = v->via.str.ptr;
	k->n = v->via.str.size;
	return 0;
}

static int req_value(struct ec_store *s, const msgpack_object *req,
    struct bytes *val, struct ec_out *o)
{
	const msgpack_object *v = ec_mp_key(req, "value");
	if (!v || v->type != MSGPACK_OBJECT_BIN)
		return ec_out_err(o, KB_EINVAL,
		    "`value`: expected bytes (msgpack bin), got %s",
		    v ? "another type" : "nothing");
	if ((int64_t)v->via.bin.size > s->conf.value_max)
		return ec_out_err(o, KB_EINVAL,
		    "`value`: %u bytes, over the limit of %lld",
		    v->via.bin.size, (long long)s->conf.value_max);
	val->p = v->via.bin.ptr;
	val->n = v->via.bin.size;
	return 0;
}

/* An optional non-negative integer; *present false when absent or nil. */
static int req_opt_int(const msgpack_object *req, const char *field,
    int64_t *out, bool *present, struct ec_out *o)
{
	const msgpack_object *v = ec_mp_key(req, field);
	*present = false;
	if (!v || v->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (!ec_mp_int(req, field, out) || *out < 0)
		return ec_out_err(o, KB_EINVAL,
		    "`%s`: expected a non-negative integer", field);
	*present = true;
	return 0;
}

static int req_opt_bool(const msgpack_object *req, const char *field,
    bool *out, struct ec_out *o)
{
	const msgpack_object *v = ec_mp_key(req, field);
	*out = false;
	if (!v || v->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (v->type != MSGPACK_OBJECT_BOOLEAN)
		return ec_out_err(o, KB_EINVAL, "`%s`: expected a boolean",
		    field);
	*out = v->via.boolean;
	return 0;
}

static json_t *jkey(struct bytes k)
{
	return ec_jb64(k.p, k.n);
}

static json_t *jrev(int64_t r)
{
	char b[32];
	snprintf(b, sizeof b, "%lld", (long long)r);
	return json_string(b);
}

/* The first key after every key starting with prefix ("\0" = no end). */
static json_t *prefix_end(struct bytes pfx)
{
	if (pfx.n == 0)
		return ec_jb64("", 1);
	unsigned char *e = malloc(pfx.n);
	if (!e)
		return NULL;
	memcpy(e, pfx.p, pfx.n);
	size_t n = pfx.n;
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

static const json_t *header(const json_t *resp)
{
	return json_object_get(resp, "header");
}

/* --- revision and compaction ------------------------------------------- */

/* A count_only range at `rev` of a key nobody uses: cheap, and it fails
 * with "compacted" exactly when rev < the compact revision. */
static int probe_rev(struct ec_store *s, struct ec_conn *cn, int64_t rev,
    int64_t dl, bool *compacted, int64_t *cur, struct ec_out *o)
{
	json_t *req = json_pack("{s:o, s:b}", "key", ec_jb64("\0", 1),
	    "count_only", 1);
	if (!req)
		return ec_out_err(o, KB_ENOMEM, "out of memory");
	if (rev > 0)
		json_object_set_new(req, "revision", jrev(rev));
	json_t *resp;
	int rc = ec_call(&s->client, cn, "/v3/kv/range", req, EC_READ, dl,
	    &resp, NULL, o);
	*compacted = false;
	if (rc == KB_EEXPIRED) {
		*compacted = true;
		ec_out_reset(o);
		return 0;
	}
	if (rc)
		return rc;
	if (cur)
		*cur = ec_jint(header(resp), "revision");
	json_decref(resp);
	return 0;
}

int ec_current_rev(struct ec_store *s, struct ec_conn *cn, int64_t dl,
    int64_t *rev, struct ec_out *o)
{
	bool c;
	return probe_rev(s, cn, 0, dl, &c, rev, o);
}

static void note_compact(struct ec_store *s, int64_t rev)
{
	long long lb = atomic_load(&s->compact_lb);
	while (rev > lb && !atomic_compare_exchange_weak(&s->compact_lb, &lb,
	    rev))
		;
}

/* etcd does not publish its compact revision; find the smallest readable
 * revision, starting from what we know (one probe in the usual case). */
static int compact_rev(struct ec_store *s, struct ec_conn *cn, int64_t dl,
    int64_t cur, int64_t *out, struct ec_out *o)
{
	int64_t lb = atomic_load(&s->compact_lb);
	bool c;
	int rc = probe_rev(s, cn, lb > 1 ? lb : 1, dl, &c, NULL, o);
	if (rc)
		return rc;
	if (!c) {
		*out = lb > 1 ? lb : 0;
		return 0;
	}
	int64_t lo = lb > 1 ? lb : 1, hi = cur; /* lo fails, hi reads */
	while (hi - lo > 1) {
		int64_t mid = lo + (hi - lo) / 2;
		if ((rc = probe_rev(s, cn, mid, dl, &c, NULL, o)))
			return rc;
		if (c)
			lo = mid;
		else
			hi = mid;
	}
	note_compact(s, hi);
	*out = hi;
	return 0;
}

int ec_check_compacted(struct ec_store *s, struct ec_conn *cn, int64_t rev,
    int64_t dl, int64_t *comp, struct ec_out *o)
{
	*comp = 0;
	bool c = false;
	int64_t cur = 0;
	int rc;
	if (rev > 1 && (rc = probe_rev(s, cn, rev - 1, dl, &c, NULL, o)))
		return rc;
	if (rev <= atomic_load(&s->compact_lb))
		c = true;
	if (!c)
		return 0;
	if ((rc = ec_current_rev(s, cn, dl, &cur, o)) ||
	    (rc = compact_rev(s, cn, dl, cur, comp, o)))
		return rc;
	if (*comp < rev)
		*comp = rev - 1; /* compacted between the probes: at least */
	return 0;
}

static int op_revision(struct ec_store *s, struct ec_conn *cn,
    const msgpack_object *req, int64_t dl, struct ec_out *o)
{
	(void)req;
	int64_t cur = 0, comp = 0;
	int rc = ec_current_rev(s, cn, dl, &cur, o);
	if (rc || (rc = compact_rev(s, cn, dl, cur, &comp, o)))
		return rc;
	msgpack_pack_map(&o->pk, 2);
	ec_mp_str(&o->pk, "rev");
	msgpack_pack_int64(&o->pk, cur);
	ec_mp_str(&o->pk, "compact_rev");
	msgpack_pack_int64(&o->pk, comp);
	return 0;
}

static int op_compact(struct ec_store *s, struct ec_conn *cn,
    const msgpack_object *req, int64_t dl, struct ec_out *o)
{
	int64_t rev;
	if (!ec_mp_int(req, "rev", &rev) || rev <= 0)
		return ec_out_err(o, KB_EINVAL, "`rev`: expected a positive "
		    "integer");
	json_t *jr = json_pack("{s:o}", "revision", jrev(rev)), *resp;
	int rc = ec_call(&s->client, cn, "/v3/kv/compaction", jr, EC_READ, dl,
	    &resp, NULL, o);
	int64_t comp = rev;
	if (rc == KB_EEXPIRED) {
		/* Already compacted at or past rev: nothing to do. */
		ec_out_reset(o);
		int64_t cur = 0;
		if ((rc = ec_current_rev(s, cn, dl, &cur, o)) ||
		    (rc = compact_rev(s, cn, dl, cur, &comp, o)))
			return rc;
	} else if (rc == KB_EINVAL) {
		return ec_out_err(o, KB_EINVAL, "`rev` %lld is in the future",
		    (long long)rev);
	} else if (rc) {
		return rc;
	} else {
		json_decref(resp);
		note_compact(s, rev);
	}
	msgpack_pack_map(&o->pk, 1);
	ec_mp_str(&o->pk, "compact_rev");
	msgpack_pack_int64(&o->pk, comp);
	return 0;
}

/* --- reads ------------------------------------------------------------- */

static int op_get(struct ec_store *s, struct ec_conn *cn,
    const msgpack_object *req, int64_t dl, struct ec_out *o)
{
	struct bytes k = {0};
	int64_t rev = 0;
	bool has_rev;
	int rc;
	if ((rc = req_key(req, "key", &k, false, o)) ||
	    (rc = req_opt_int(req, "rev", &rev, &has_rev, o)))
		return rc;
	json_t *jr = json_pack("{s:o}", "key", jkey(k)), *resp;
	if (rev > 0)
		json_object_set_new(jr, "revision", jrev(rev));
	rc = ec_call(&s->client, cn, "/v3/kv/range", jr, EC_READ, dl, &resp,
	    NULL, o);
	if (rc)
		return rc;
	const json_t *kvs = json_object_get(resp, "kvs");
	msgpack_pack_map(&o->pk, 2);
	ec_mp_str(&o->pk, "kv");
	if (json_array_size(kvs) > 0)
		ec_pack_kv(&o->pk, json_array_get(kvs, 0), true);
	else
		msgpack_pack_nil(&o->pk);
	ec_mp_str(&o->pk, "rev");
	msgpack_pack_int64(&o->pk, rev > 0 ? rev :
	    ec_jint(header(resp), "revision"));
	json_decref(resp);
	return 0;
}

/* Continue token: "<rev>.<count>.<base64 of the next key>". */
static char *token_make(int64_t rev, int64_t count, const void *last,
    size_t lastn)
{
	char *k = malloc(lastn + 1);
	if (!k)
		return NULL;
	memcpy(k, last, lastn);
	k[lastn] = '\0'; /* the next key is the last one plus a NUL */
	char *b = ec_b64_enc(k, lastn + 1);
	free(k);
	if (!b)
		return NULL;
	size_t n = strlen(b) + 48;
	char *t = malloc(n);
	if (t)
		snprintf(t, n, "%lld.%lld.%s", (long long)rev, (long long)count,
		    b);
	free(b);
	return t;
}

static int token_parse(const msgpack_object *v, int64_t *rev, int64_t *count,
    unsigned char **next, size_t *nextn)
{
	if (v->type != MSGPACK_OBJECT_STR || v->via.str.size > 8192)
		return -1;
	char *t = strndup(v->via.str.ptr, v->via.str.size);
	if (!t)
		return -1;
	char *p = t, *e;
	*rev = strtoll(p, &e, 10);
	if (e == p || *e != '.' || *rev <= 0)
		goto bad;
	p = e + 1;
	*count = strtoll(p, &e, 10);
	if (e == p || *e != '.' || *count < 0)
		goto bad;
	*next = ec_b64_dec(e + 1, nextn);
	free(t);
	return *next && *nextn > 0 ? 0 : -1;
bad:
	free(t);
	return -1;
}

static int op_range(struct ec_store *s, struct ec_conn *cn,
    const msgpack_object *req, int64_t dl, struct ec_out *o)
{
	struct bytes pfx = {0};
	int64_t limit = 0, rev = 0, tok_count = -1;
	bool has, count_only, keys_only;
	int rc;
	if ((rc = req_key(req, "prefix", &pfx, true, o)) ||
	    (rc = req_opt_int(req, "limit", &limit, &has, o)) ||
	    (rc = req_opt_int(req, "rev", &rev, &has, o)) ||
	    (rc = req_opt_bool(req, "count_only", &count_only, o)) ||
	    (rc = req_opt_bool(req, "keys_only", &keys_only, o)))
		return rc;
	const msgpack_object *cont = ec_mp_key(req, "continue");
	unsigned char *next = NULL;
	size_t nextn = 0;
	if (cont && cont->type != MSGPACK_OBJECT_NIL) {
		if (token_parse(cont, &rev, &tok_count, &next, &nextn) != 0 ||
		    nextn < pfx.n || memcmp(next, pfx.p, pfx.n) != 0) {
			free(next);
			return ec_out_err(o, KB_EINVAL, "`continue`: not a "
			    "token from a range of this prefix");
		}
	}
	json_t *jr = json_pack("{s:o, s:o}", "key", next ?
	    ec_jb64(next, nextn) : (pfx.n ? jkey(pfx) : ec_jb64("", 1)),
	    "range_end", prefix_end(pfx));
	free(next);
	if (!jr)
		return ec_out_err(o, KB_ENOMEM, "out of memory");
	if (limit > 0)
		json_object_set_new(jr, "limit", jrev(limit));
	if (rev > 0)
		json_object_set_new(jr, "revision", jrev(rev));
	if (count_only)
		json_object_set_new(jr, "count_only", json_true());
	if (keys_only)
		json_object_set_new(jr, "keys_only", json_true());
	json_t *resp;
	rc = ec_call(&s->client, cn, "/v3/kv/range", jr, EC_READ, dl, &resp,
	    NULL, o);
	if (rc == KB_EEXPIRED)
		return ec_out_err(o, rc, "revision %lld has been compacted",
		    (long long)rev);
	if (rc)
		return rc;
	int64_t served = rev > 0 ? rev : ec_jint(header(resp), "revision");
	int64_t count = ec_jint(resp, "count");
	if (tok_count >= 0 && !count_only)
		count = tok_count; /* the whole range, as on the first page */
	const json_t *kvs = json_object_get(resp, "kvs");
	bool more = json_is_true(json_object_get(resp, "more")) &&
	    json_array_size(kvs) > 0;
	msgpack_pack_map(&o->pk, 5);
	ec_mp_str(&o->pk, "kvs");
	msgpack_pack_array(&o->pk, json_array_size(kvs));
	size_t i;
	const json_t *kv;
	json_array_foreach(kvs, i, kv)
		ec_pack_kv(&o->pk, kv, !keys_only);
	ec_mp_str(&o->pk, "count");
	msgpack_pack_int64(&o->pk, count);
	ec_mp_str(&o->pk, "more");
	if (more)
		msgpack_pack_true(&o->pk);
	else
		msgpack_pack_false(&o->pk);
	ec_mp_str(&o->pk, "continue");
	if (more) {
		const json_t *last = json_array_get(kvs, json_array_size(kvs) - 1);
		size_t ln = 0;
		const char *lk = json_string_value(json_object_get(last, "key"));
		unsigned char *lastk = ec_b64_dec(lk ? lk : "", &ln);
		char *t = lastk ? token_make(served, count, lastk, ln) : NULL;
		free(lastk);
		if (!t) {
			json_decref(resp);
			return ec_out_err(o, KB_ENOMEM, "out of memory");
		}
		ec_mp_str(&o->pk, t);
		free(t);
	} else {
		msgpack_pack_nil(&o->pk);
	}
	ec_mp_str(&o->pk, "rev");
	msgpack_pack_int64(&o->pk, served);
	json_decref(resp);
	return 0;
}

/* --- writes ------------------------------------------------------------ */

static json_t *guard(struct bytes k, bool has_cond, int64_t if_mod)
{
	json_t *a = json_array();
	if (!has_cond)
		return a;
	if (if_mod == 0)
		json_array_append_new(a, json_pack("{s:o, s:s, s:s, s:s}",
		    "key", jkey(k), "target", "CREATE", "result", "EQUAL",
		    "create_revision", "0"));
	else
		json_array_append_new(a, json_pack("{s:o, s:s, s:s, s:o}",
		    "key", jkey(k), "target", "MOD", "result", "EQUAL",
		    "mod_revision", jrev(if_mod)));
	return a;
}

static const json_t *txn_resp(const json_t *resp, size_t i, const char *kind)
{
	return json_object_get(json_array_get(json_object_get(resp,
	    "responses"), i), kind);
}

static const json_t *first_kv(const json_t *range_resp)
{
	return json_array_get(json_object_get(range_resp, "kvs"), 0);
}

/* Conflict: {kv: KV | nil, rev}. */
static int conflict(struct ec_out *o, const json_t *cur, int64_t rev,
    int64_t if_mod)
{
	ec_out_err(o, KB_ECONFLICT, if_mod == 0 ? "the key exists (mod_rev "
	    "%lld)" : "the key's mod_rev is %lld, not the expected one",
	    (long long)ec_jint(cur, "mod_revision"));
	o->has_body = true;
	msgpack_pack_map(&o->pk, 2);
	ec_mp_str(&o->pk, "kv");
	if (cur)
		ec_pack_kv(&o->pk, cur, true);
	else
		msgpack_pack_nil(&o->pk);
	ec_mp_str(&o->pk, "rev");
	msgpack_pack_int64(&o->pk, rev);
	return KB_ECONFLICT;
}

/* The key as it was at `rev` (a new reference, or NULL when absent). */
static int kv_at(struct ec_store *s, struct ec_conn *cn, struct bytes k,
    int64_t rev, int64_t dl, json_t **kv, struct ec_out *o)
{
	*kv = NULL;
	json_t *jr = json_pack("{s:o, s:o}", "key", jkey(k), "revision",
	    jrev(rev)), *resp;
	int rc = ec_call(&s->client, cn, "/v3/kv/range", jr, EC_READ, dl,
	    &resp, NULL, o);
	if (rc)
		return rc;
	json_t *f = (json_t *)first_kv(resp);
	if (f)
		*kv = json_incref(f);
	json_decref(resp);
	return 0;
}

/* After a repeat of a conditional put failed its compare although an
 * earlier attempt may have applied: is the current value ours, written
 * over exactly the state the condition asked for? Sets *prev (new ref or
 * NULL) to the KV it replaced. */
static bool put_was_ours(struct ec_store *s, struct ec_conn *cn,
    struct bytes k, struct bytes v, int64_t if_mod, const json_t *cur,
    int64_t dl, json_t **prev, struct ec_out *o)
{
	*prev = NULL;
	if (!cur || !ec_jb64_eq(json_object_get(cur, "value"), v.p, v.n))
		return false;
	int64_t mod = ec_jint(cur, "mod_revision");
	if (if_mod == 0)
		return ec_jint(cur, "version") == 1;
	json_t *before;
	if (mod <= 1 || kv_at(s, cn, k, mod - 1, dl, &before, o) != 0) {
		ec_out_reset(o);
		return false;
	}
	if (before && ec_jint(before, "mod_revision") == if_mod) {
		*prev = before;
		return true;
	}
	json_decref(before);
	return false;
}

static void pack_kv_meta(msgpack_packer *pk, struct bytes k, int64_t create,
    int64_t mod, int64_t version)
{
	msgpack_pack_map(pk, 4);
	ec_mp_str(pk, "key");
	ec_mp_strn(pk, k.p, k.n);
	ec_mp_str(pk, "create_rev");
	msgpack_pack_int64(pk, create);
	ec_mp_str(pk, "mod_rev");
	msgpack_pack_int64(pk, mod);
	ec_mp_str(pk, "version");
	msgpack_pack_int64(pk, version);
}

static int op_put(struct ec_store *s, struct ec_conn *cn,
    const msgpack_object *req, int64_t dl, struct ec_out *o)
{
	struct bytes k = {0}, v = {0};
	int64_t if_mod = 0;
	bool has_cond, want_prev;
	int rc;
	if ((rc = req_key(req, "key", &k, false, o)) ||
	    (rc = req_value(s, req, &v, o)) ||
	    (rc = req_opt_int(req, "if_mod_rev", &if_mod, &has_cond, o)) ||
	    (rc = req_opt_bool(req, "prev", &want_prev, o)))
		return rc;
	json_t *jr = json_pack("{s:o, s:[{s:{s:o, s:o, s:b}}, {s:{s:o, s:b}}],"
	    " s:[{s:{s:o}}]}",
	    "compare", guard(k, has_cond, if_mod),
	    "success", "request_put", "key", jkey(k), "value", ec_jb64(v.p,
	    v.n), "prev_kv", want_prev, "request_range", "key", jkey(k),
	    "keys_only", 1,
	    "failure", "request_range", "key", jkey(k));
	if (!jr)
		return ec_out_err(o, KB_ENOMEM, "out of memory");
	json_t *resp;
	bool unknown = false;
	rc = ec_call(&s->client, cn, "/v3/kv/txn", jr, EC_GUARDED, dl, &resp,
	    &unknown, o);
	if (rc)
		return rc;
	int64_t rev = ec_jint(header(resp), "revision");
	if (!json_is_true(json_object_get(resp, "succeeded"))) {
		const json_t *cur = first_kv(txn_resp(resp, 0,
		    "response_range"));
		json_t *prev = NULL;
		if (unknown && put_was_ours(s, cn, k, v, if_mod, cur, dl, &prev,
		    o)) {
			if (s->client.log)
				s->client.log(s->client.log_arg, 2 /* info */,
				    "a repeated conditional put found that its "
				    "first attempt had applied");
			msgpack_pack_map(&o->pk, 3);
			ec_mp_str(&o->pk, "rev");
			msgpack_pack_int64(&o->pk, ec_jint(cur, "mod_revision"));
			ec_mp_str(&o->pk, "kv");
			pack_kv_meta(&o->pk, k, ec_jint(cur, "create_revision"),
			    ec_jint(cur, "mod_revision"), ec_jint(cur,
			    "version"));
			ec_mp_str(&o->pk, "prev");
			if (want_prev && prev)
				ec_pack_kv(&o->pk, prev, true);
			else
				msgpack_pack_nil(&o->pk);
			json_decref(prev);
			json_decref(resp);
			return 0;
		}
		rc = conflict(o, cur, rev, if_mod);
		json_decref(resp);
		return rc;
	}
	const json_t *now = first_kv(txn_resp(resp, 1, "response_range"));
	const json_t *prev = json_object_get(txn_resp(resp, 0, "response_put"),
	    "prev_kv");
	msgpack_pack_map(&o->pk, 3);
	ec_mp_str(&o->pk, "rev");
	msgpack_pack_int64(&o->pk, rev);
	ec_mp_str(&o->pk, "kv");
	pack_kv_meta(&o->pk, k, now ? ec_jint(now, "create_revision") : rev,
	    rev, now ? ec_jint(now, "version") : 1);
	ec_mp_str(&o->pk, "prev");
	if (want_prev && prev)
		ec_pack_kv(&o->pk, prev, true);
	else
		msgpack_pack_nil(&o->pk);
	json_decref(resp);
	return 0;
}

static int op_delete(struct ec_store *s, struct ec_conn *cn,
    const msgpack_object *req, int64_t dl, struct ec_out *o)
{
	struct bytes k = {0};
	int64_t if_mod = 0;
	bool has_cond, want_prev;
	int rc;
	if ((rc = req_key(req, "key", &k, false, o)) ||
	    (rc = req_opt_int(req, "if_mod_rev", &if_mod, &has_cond, o)) ||
	    (rc = req_opt_bool(req, "prev", &want_prev, o)))
		return rc;
	json_t *jr = json_pack("{s:o, s:[{s:{s:o, s:b}}], s:[{s:{s:o}}]}",
	    "compare", guard(k, has_cond, if_mod),
	    "success", "request_delete_range", "key", jkey(k), "prev_kv",
	    want_prev,
	    "failure", "request_range", "key", jkey(k));
	if (!jr)
		return ec_out_err(o, KB_ENOMEM, "out of memory");
	json_t *resp;
	bool unknown = false;
	rc = ec_call(&s->client, cn, "/v3/kv/txn", jr, EC_GUARDED, dl, &resp,
	    &unknown, o);
	if (rc)
		return rc;
	int64_t rev = ec_jint(header(resp), "revision");
	if (!json_is_true(json_object_get(resp, "succeeded"))) {
		rc = conflict(o, first_kv(txn_resp(resp, 0, "response_range")),
		    rev, if_mod);
		json_decref(resp);
		return rc;
	}
	const json_t *dr = txn_resp(resp, 0, "response_delete_range");
	const json_t *prev = json_array_get(json_object_get(dr, "prev_kvs"), 0);
	msgpack_pack_map(&o->pk, 3);
	ec_mp_str(&o->pk, "rev");
	msgpack_pack_int64(&o->pk, rev);
	ec_mp_str(&o->pk, "deleted");
	msgpack_pack_int64(&o->pk, ec_jint(dr, "deleted"));
	ec_mp_str(&o->pk, "prev");
	if (want_prev && prev)
		ec_pack_kv(&o->pk, prev, true);
	else
		msgpack_pack_nil(&o->pk);
	json_decref(resp);
	return 0;
}

/* --- txn ----------------------------------------------------------------- */

static int txn_compare(const msgpack_object *c, json_t *out, struct ec_out *o)
{
	struct bytes k = {0};
	int rc = req_key(c, "key", &k, false, o);
	if (rc)
		return rc;
	const msgpack_object *t = ec_mp_key(c, "target");
	const msgpack_object *op = ec_mp_key(c, "op");
	const msgpack_object *val = ec_mp_key(c, "value");
	if (!t || t->type != MSGPACK_OBJECT_STR || !op ||
	    op->type != MSGPACK_OBJECT_STR || !val)
		return ec_out_err(o, KB_EINVAL, "compare: expected {key, target, "
		    "op, value}");
	char ts[16] = "", os[4] = "";
	if (t->via.str.size < sizeof ts)
		memcpy(ts, t->via.str.ptr, t->via.str.size);
	if (op->via.str.size < sizeof os)
		memcpy(os, op->via.str.ptr, op->via.str.size);
	const char *result = !strcmp(os, "=") ? "EQUAL" : !strcmp(os, "!=") ?
	    "NOT_EQUAL" : !strcmp(os, "<") ? "LESS" : !strcmp(os, ">") ?
	    "GREATER" : NULL;
	if (!result)
		return ec_out_err(o, KB_EINVAL, "compare: `op` must be =, !=, < "
		    "or >, got `%s`", os);
	const char *target, *field;
	int64_t n;
	if (!strcmp(ts, "exists")) {
		/* exists <=> create_revision != 0 */
		if (val->type != MSGPACK_OBJECT_BOOLEAN ||
		    (strcmp(os, "=") && strcmp(os, "!=")))
			return ec_out_err(o, KB_EINVAL, "compare: `exists` takes "
			    "= or != and a boolean");
		bool want = val->via.boolean == !strcmp(os, "=");
		target = "CREATE";
		field = "create_revision";
		result = want ? "NOT_EQUAL" : "EQUAL";
		n = 0;
	} else {
		if (!strcmp(ts, "mod")) {
			target = "MOD";
			field = "mod_revision";
		} else if (!strcmp(ts, "create")) {
			target = "CREATE";
			field = "create_revision";
		} else if (!strcmp(ts, "version")) {
			target = "VERSION";
			field = "version";
		} else {
			return ec_out_err(o, KB_EINVAL, "compare: `target` must "
			    "be mod, create, version or exists, got `%s`", ts);
		}
		if (!ec_mp_int(c, "value", &n))
			return ec_out_err(o, KB_EINVAL, "compare: `value` must "
			    "be an integer for target %s", ts);
	}
	json_array_append_new(out, json_pack("{s:o, s:s, s:s, s:o}", "key",
	    jkey(k), "target", target, "result", result, field, jrev(n)));
	return 0;
}

/* kinds[i]: 'p' put, 'd' delete, 'g' get — to read the results back. */
static int txn_ops(struct ec_store *s, const msgpack_object *ops, json_t *out,
    char *kinds, struct ec_out *o)
{
	if (!ops || ops->type == MSGPACK_OBJECT_NIL)
		return 0;
	if (ops->type != MSGPACK_OBJECT_ARRAY)
		return ec_out_err(o, KB_EINVAL, "txn ops: expected an array");
	for (uint32_t i = 0; i < ops->via.array.size; i++) {
		const msgpack_object *op = &ops->via.array.ptr[i];
		const msgpack_object *b;
		struct bytes k = {0}, v = {0};
		int rc;
		if ((b = ec_mp_key(op, "put"))) {
			if ((rc = req_key(b, "key", &k, false, o)) ||
			    (rc = req_value(s, b, &v, o)))
				return rc;
			json_array_append_new(out, json_pack("{s:{s:o, s:o}}",
			    "request_put", "key", jkey(k), "value",
			    ec_jb64(v.p, v.n)));
			kinds[i] = 'p';
		} else if ((b = ec_mp_key(op, "delete"))) {
			if ((rc = req_key(b, "key", &k, false, o)))
				return rc;
			json_array_append_new(out, json_pack("{s:{s:o, s:b}}",
			    "request_delete_range", "key", jkey(k), "prev_kv",
			    1));
			kinds[i] = 'd';
		} else if ((b = ec_mp_key(op, "get"))) {
			if ((rc = req_key(b, "key", &k, false, o)))
				return rc;
			json_array_append_new(out, json_pack("{s:{s:o}}",
			    "request_range", "key", jkey(k)));
			kinds[i] = 'g';
		} else {
			return ec_out_err(o, KB_EINVAL, "txn op %u: expected "
			    "{put: …}, {delete: …} or {get: …}", i);
		}
	}
	return 0;
}

static int op_txn(struct ec_store *s, struct ec_conn *cn,
    const msgpack_object *req, int64_t dl, struct ec_out *o)
{
	const msgpack_object *cmp = ec_mp_key(req, "compare");
	const msgpack_object *succ = ec_mp_key(req, "success");
	const msgpack_object *fail = ec_mp_key(req, "failure");
	if (cmp && cmp->type != MSGPACK_OBJECT_NIL &&
	    cmp->type != MSGPACK_OBJECT_ARRAY)
		return ec_out_err(o, KB_EINVAL, "`compare`: expected an array");
	size_t ns = succ && succ->type == MSGPACK_OBJECT_ARRAY ?
	    succ->via.array.size : 0;
	size_t nf = fail && fail->type == MSGPACK_OBJECT_ARRAY ?
	    fail->via.array.size : 0;
	char *ks = calloc(ns + nf + 2, 1);
	json_t *jc = json_array(), *js = json_array(), *jf = json_array();
	int rc = 0;
	if (!ks || !jc || !js || !jf) {
		rc = ec_out_err(o, KB_ENOMEM, "out of memory");
		goto out;
	}
	if (cmp && cmp->type == MSGPACK_OBJECT_ARRAY)
		for (uint32_t i = 0; i < cmp->via.array.size && !rc; i++)
			rc = txn_compare(&cmp->via.array.ptr[i], jc, o);
	if (rc || (rc = txn_ops(s, succ, js, ks, o)) ||
	    (rc = txn_ops(s, fail, jf, ks + ns + 1, o)))
		goto out;
	json_t *jr = json_pack("{s:O, s:O, s:O}", "compare", jc, "success", js,
	    "failure", jf), *resp;
	rc = ec_call(&s->client, cn, "/v3/kv/txn", jr, EC_ONCE, dl, &resp,
	    NULL, o);
	if (rc)
		goto out;
	bool ok = json_is_true(json_object_get(resp, "succeeded"));
	const char *kinds = ok ? ks : ks + ns + 1;
	size_t n = ok ? ns : nf;
	int64_t rev = ec_jint(header(resp), "revision");
	msgpack_pack_map(&o->pk, 3);
	ec_mp_str(&o->pk, "succeeded");
	if (ok)
		msgpack_pack_true(&o->pk);
	else
		msgpack_pack_false(&o->pk);
	ec_mp_str(&o->pk, "rev");
	msgpack_pack_int64(&o->pk, rev);
	ec_mp_str(&o->pk, "results");
	msgpack_pack_array(&o->pk, n);
	for (size_t i = 0; i < n; i++) {
		msgpack_pack_map(&o->pk, 1);
		if (kinds[i] == 'p') {
			ec_mp_str(&o->pk, "put");
			msgpack_pack_map(&o->pk, 1);
			ec_mp_str(&o->pk, "rev");
			msgpack_pack_int64(&o->pk, rev);
		} else if (kinds[i] == 'd') {
			const json_t *d = txn_resp(resp, i,
			    "response_delete_range");
			const json_t *p = json_array_get(json_object_get(d,
			    "prev_kvs"), 0);
			ec_mp_str(&o->pk, "delete");
			msgpack_pack_map(&o->pk, 2);
			ec_mp_str(&o->pk, "deleted");
			msgpack_pack_int64(&o->pk, ec_jint(d, "deleted"));
			ec_mp_str(&o->pk, "prev");
			if (p)
				ec_pack_kv(&o->pk, p, true);
			else
				msgpack_pack_nil(&o->pk);
		} else {
			const json_t *kv = first_kv(txn_resp(resp, i,
			    "response_range"));
			ec_mp_str(&o->pk, "get");
			msgpack_pack_map(&o->pk, 1);
			ec_mp_str(&o->pk, "kv");
			if (kv)
				ec_pack_kv(&o->pk, kv, true);
			else
				msgpack_pack_nil(&o->pk);
		}
	}
	json_decref(resp);
out:
	json_decref(jc);
	json_decref(js);
	json_decref(jf);
	free(ks);
	return rc;
}

/* --- dispatch ------------------------------------------------------------- */

void ec_op(struct ec_store *s, struct ec_conn *cn, const char *op,
    const msgpack_object *req, int64_t dl, struct ec_out *o)
{
	static const struct {
		const char *name;
		int (*fn)(struct ec_store *, struct ec_conn *,
		    const msgpack_object *, int64_t, struct ec_out *);
		bool needs_map;
	} ops[] = {
		{"get", op_get, true},
		{"range", op_range, true},
		{"put", op_put, true},
		{"delete", op_delete, true},
		{"txn", op_txn, true},
		{"compact", op_compact, true},
		{"revision", op_revision, false},
	};
	ec_out_reset(o);
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		if (strcmp(op, ops[i].name) != 0)
			continue;
		if (ops[i].needs_map &&
		    (!req || req->type != MSGPACK_OBJECT_MAP)) {
			ec_out_err(o, KB_EINVAL, "op `%s`: expected a map body",
			    op);
			return;
		}
		int rc = ops[i].fn(s, cn, req, dl, o);
		if (rc && !o->code)
			ec_out_err(o, rc, "op `%s` failed", op);
		if (!rc)
			o->has_body = true;
		return;
	}
	ec_out_err(o, KB_EBADREQUEST, "unknown store op `%s`", op);
}
