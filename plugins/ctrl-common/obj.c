/* plugins/ctrl-common/obj.c — reading and editing Kubernetes objects held
 * as msgpack: owner references, label selectors, pod readiness, times,
 * and "a copy of this object with one field changed". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctrl.h"

/* --- owner references and finalizers ----------------------------------------- */

const msgpack_object *ctrl_controller_ref(const msgpack_object *obj)
{
	const msgpack_object *refs = kb_mp_get(obj, "metadata.ownerReferences");
	if (refs == NULL || refs->type != MSGPACK_OBJECT_ARRAY)
		return NULL;
	for (uint32_t i = 0; i < refs->via.array.size; i++) {
		bool ctl = false;
		if (kb_mp_bool(&refs->via.array.ptr[i], "controller", &ctl) &&
		    ctl)
			return &refs->via.array.ptr[i];
	}
	return NULL;
}

bool ctrl_has_owner_uid(const msgpack_object *obj, const char *uid,
    size_t uidlen)
{
	const msgpack_object *refs = kb_mp_get(obj, "metadata.ownerReferences");
	if (refs == NULL || refs->type != MSGPACK_OBJECT_ARRAY)
		return false;
	for (uint32_t i = 0; i < refs->via.array.size; i++) {
		const char *u;
		size_t ul;
		if (kb_mp_str(&refs->via.array.ptr[i], "uid", &u, &ul) &&
		    ul == uidlen && !memcmp(u, uid, ul))
			return true;
	}
	return false;
}

bool ctrl_str_eq(const msgpack_object *o, const char *path,
    const msgpack_object *other, const char *other_path)
{
	const char *a, *b;
	size_t al, bl;
	return kb_mp_str(o, path, &a, &al) &&
	    kb_mp_str(other, other_path, &b, &bl) && al == bl &&
	    !memcmp(a, b, al);
}

bool ctrl_deleting(const msgpack_object *obj)
{
	const msgpack_object *d = kb_mp_get(obj, "metadata.deletionTimestamp");
	return d && d->type != MSGPACK_OBJECT_NIL;
}

bool ctrl_has_finalizer(const msgpack_object *obj, const char *path,
    const char *f)
{
	const msgpack_object *arr = kb_mp_get(obj, path);
	if (arr == NULL || arr->type != MSGPACK_OBJECT_ARRAY)
		return false;
	for (uint32_t i = 0; i < arr->via.array.size; i++)
		if (kb_mp_is(&arr->via.array.ptr[i], f))
			return true;
	return false;
}

void ctrl_pack_strs_without(msgpack_packer *pk, const msgpack_object *arr,
    const char *s)
{
	uint32_t n = 0;
	bool ok = arr && arr->type == MSGPACK_OBJECT_ARRAY;
	for (uint32_t i = 0; ok && i < arr->via.array.size; i++)
		n += !kb_mp_is(&arr->via.array.ptr[i], s);
	msgpack_pack_array(pk, n);
	for (uint32_t i = 0; ok && i < arr->via.array.size; i++)
		if (!kb_mp_is(&arr->via.array.ptr[i], s))
			msgpack_pack_object(pk, arr->via.array.ptr[i]);
}

kb_body *ctrl_delete_opts(const char *policy, const char *uid, size_t uidlen)
{
	if (uid)
		return kb_mp_body("{s:s, s:{s:S}}", "propagationPolicy", policy,
		    "preconditions", "uid", uid, uidlen);
	return kb_mp_body("{s:s}", "propagationPolicy", policy);
}

/* --- label selectors --------------------------------------------------------------- */

static bool str_in(const msgpack_object *arr, const msgpack_object *s)
{
	if (arr == NULL || arr->type != MSGPACK_OBJECT_ARRAY || s == NULL ||
	    s->type != MSGPACK_OBJECT_STR)
		return false;
	for (uint32_t i = 0; i < arr->via.array.size; i++) {
		const msgpack_object *v = &arr->via.array.ptr[i];
		if (v->type == MSGPACK_OBJECT_STR &&
		    v->via.str.size == s->via.str.size &&
		    !memcmp(v->via.str.ptr, s->via.str.ptr, s->via.str.size))
			return true;
	}
	return false;
}

static const msgpack_object *label(const msgpack_object *labels,
    const msgpack_object *key)
{
	if (key == NULL || key->type != MSGPACK_OBJECT_STR)
		return NULL;
	return kb_mp_keyn(labels, key->via.str.ptr, key->via.str.size);
}

bool ctrl_selector_empty(const msgpack_object *sel)
{
	const msgpack_object *ml = kb_mp_key(sel, "matchLabels");
	const msgpack_object *me = kb_mp_key(sel, "matchExpressions");
	return (ml == NULL || ml->type != MSGPACK_OBJECT_MAP ||
		   ml->via.map.size == 0) &&
	    (me == NULL || me->type != MSGPACK_OBJECT_ARRAY ||
		me->via.array.size == 0);
}

bool ctrl_selector_matches(const msgpack_object *sel,
    const msgpack_object *labels)
{
	if (sel == NULL || sel->type != MSGPACK_OBJECT_MAP)
		return false;
	const msgpack_object *ml = kb_mp_key(sel, "matchLabels");
	if (ml && ml->type == MSGPACK_OBJECT_MAP) {
		for (uint32_t i = 0; i < ml->via.map.size; i++) {
			const msgpack_object *v =
			    label(labels, &ml->via.map.ptr[i].key);
			const msgpack_object *want = &ml->via.map.ptr[i].val;
			if (v == NULL || v->type != MSGPACK_OBJECT_STR ||
			    want->type != MSGPACK_OBJECT_STR ||
			    v->via.str.size != want->via.str.size ||
			    memcmp(v->via.str.ptr, want->via.str.ptr,
				v->via.str.size))
				return false;
		}
	}
	const msgpack_object *me = kb_mp_key(sel, "matchExpressions");
	for (uint32_t i = 0;
	     me && me->type == MSGPACK_OBJECT_ARRAY && i < me->via.array.size;
	     i++) {
		const msgpack_object *e = &me->via.array.ptr[i];
		const msgpack_object *v = label(labels, kb_mp_key(e, "key"));
		const msgpack_object *vals = kb_mp_key(e, "values");
		if (kb_mp_streq(e, "operator", "In")) {
			if (!str_in(vals, v))
				return false;
		} else if (kb_mp_streq(e, "operator", "NotIn")) {
			if (v && str_in(vals, v))
				return false;
		} else if (kb_mp_streq(e, "operator", "Exists")) {
			if (v == NULL)
				return false;
		} else if (kb_mp_streq(e, "operator", "DoesNotExist")) {
			if (v != NULL)
				return false;
		} else {
			return false;
		}
	}
	return true;
}

/* --- times -------------------------------------------------------------------------- */

int64_t ctrl_parse_time(const msgpack_object *o, const char *path)
{
	const char *s;
	size_t len;
	int64_t ms;
	return kb_mp_str(o, path, &s, &len) && kb_time_parse(s, len, &ms) ? ms :
									    -1;
}

void ctrl_format_time(int64_t ms, char *buf, size_t len)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int64_t ctrl_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- pods ------------------------------------------------------------------------------ */

bool ctrl_pod_active(const msgpack_object *pod)
{
	return !ctrl_deleting(pod) &&
	    !kb_mp_streq(pod, "status.phase", "Succeeded") &&
	    !kb_mp_streq(pod, "status.phase", "Failed");
}

static const msgpack_object *ready_cond(const msgpack_object *pod)
{
	const msgpack_object *conds = kb_mp_get(pod, "status.conditions");
	for (uint32_t i = 0; conds && conds->type == MSGPACK_OBJECT_ARRAY &&
	     i < conds->via.array.size;
	     i++)
		if (kb_mp_streq(&conds->via.array.ptr[i], "type", "Ready"))
			return &conds->via.array.ptr[i];
	return NULL;
}

bool ctrl_pod_ready(const msgpack_object *pod)
{
	const msgpack_object *c = ready_cond(pod);
	return c && kb_mp_streq(c, "status", "True");
}

int64_t ctrl_pod_ready_since(const msgpack_object *pod)
{
	const msgpack_object *c = ready_cond(pod);
	return c ? ctrl_parse_time(c, "lastTransitionTime") : -1;
}

bool ctrl_pod_available(const msgpack_object *pod, int64_t min_ready_s,
    int64_t now_ms)
{
	if (!ctrl_pod_ready(pod))
		return false;
	if (min_ready_s <= 0)
		return true;
	int64_t since = ctrl_pod_ready_since(pod);
	return since >= 0 && since + min_ready_s * 1000 <= now_ms;
}

/* --- editing ------------------------------------------------------------------------------ */

static void pack_set(msgpack_packer *pk, const msgpack_object *o,
    const char *path, const void *raw, size_t rawlen)
{
	const char *dot = strchr(path, '.');
	size_t seglen = dot ? (size_t)(dot - path) : strlen(path);
	const char *rest = dot ? dot + 1 : NULL;
	bool is_map = o && o->type == MSGPACK_OBJECT_MAP;
	uint32_t size = is_map ? o->via.map.size : 0;
	bool found = false;
	for (uint32_t i = 0; i < size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR &&
		    k->via.str.size == seglen &&
		    !memcmp(k->via.str.ptr, path, seglen))
			found = true;
	}
	bool add = !found && (raw != NULL);
	uint32_t n = size + add - (found && rest == NULL && raw == NULL);
	msgpack_pack_map(pk, n);
	for (uint32_t i = 0; i < size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR &&
		    k->via.str.size == seglen &&
		    !memcmp(k->via.str.ptr, path, seglen)) {
			if (rest) {
				msgpack_pack_object(pk, *k);
				pack_set(pk, &o->via.map.ptr[i].val, rest, raw,
				    rawlen);
			} else if (raw) {
				msgpack_pack_object(pk, *k);
				kb_mp_pack(pk, "r", raw, rawlen);
			}
			continue;
		}
		msgpack_pack_object(pk, *k);
		msgpack_pack_object(pk, o->via.map.ptr[i].val);
	}
	if (add) {
		kb_mp_pack(pk, "S", path, seglen);
		if (rest)
			pack_set(pk, NULL, rest, raw, rawlen);
		else
			kb_mp_pack(pk, "r", raw, rawlen);
	}
}

kb_body *ctrl_obj_set(const msgpack_object *obj, const char *path,
    const void *raw, size_t rawlen)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	pack_set(&pk, obj, path, raw, rawlen);
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	return b;
}

kb_body *ctrl_obj_setf(const msgpack_object *obj, const char *path,
    const char *fmt, ...)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	va_list ap;
	va_start(ap, fmt);
	int rc = kb_mp_vpack(&pk, fmt, ap);
	va_end(ap);
	kb_body *b = rc == 0 ? ctrl_obj_set(obj, path, sb.data, sb.size) : NULL;
	msgpack_sbuffer_destroy(&sb);
	return b;
}
