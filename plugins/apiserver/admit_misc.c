/* admit_misc.c — Namespace, ConfigMap, Secret and ServiceAccount:
 * their defaults (the namespace strategy's finalizer and phase, the
 * kubernetes.io/metadata.name label, Secret type and stringData) and
 * validation (config keys, the 1 MiB limit, secret types, immutable
 * objects). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "admit.h"

#define MAX_DATA (1024 * 1024)

/* --- Namespace -------------------------------------------------------------- */

static bool has_string(const json_t *arr, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
		if (json_is_string(v) && !strcmp(json_string_value(v), s))
			return true;
	return false;
}

void api_default_namespace(json_t *obj, const json_t *old)
{
	json_t *meta, *spec;
	const char *name;

	if (!json_is_object(obj))
		return;
	meta = adm_obj_make(obj, "metadata");
	spec = adm_obj_make(obj, "spec");
	name = adm_str(meta, "name");
	if (!adm_is_empty(name))
		json_object_set_new(adm_obj_make(meta, "labels"),
		    "kubernetes.io/metadata.name", json_string(name));
	if (old) {
		/* Kubernetes keeps spec.finalizers on a plain update (they
		 * change through namespaces/finalize); Kubus has no finalize
		 * subresource, so the namespace controller removes them with a
		 * plain update and they are left as sent. */
		adm_default_str(adm_obj_make(obj, "status"), "phase", "Active");
		return;
	}
	json_t *fins = adm_arr(spec, "finalizers");
	if (!fins) {
		fins = json_array();
		json_object_set_new(spec, "finalizers", fins);
	}
	if (!has_string(fins, "kubernetes"))
		json_array_append_new(fins, json_string("kubernetes"));
	json_object_set_new(obj, "status",
	    json_pack("{s:s}", "phase", "Active"));
}

void api_validate_namespace(const json_t *obj, const json_t *old,
    struct api_error *e)
{
	size_t i;
	json_t *f;

	if (old) {
		adm_meta_update(obj, old, e);
		return;
	}
	adm_meta(obj, false, adm_name_label, e);
	json_array_foreach(adm_arr(adm_obj(obj, "spec"), "finalizers"), i, f) {
		struct adm_msgs m = { 0 };
		const char *s = json_string_value(f) ?: "";
		adm_qualified_name(s, &m);
		adm_invalid_msgs(e, "spec.finalizers", s, &m);
		if (!strchr(s, '/') && strcmp(s, "kubernetes") &&
		    strcmp(s, "orphan") && strcmp(s, "foregroundDeletion"))
			adm_invalid_str(e, "spec.finalizers", s,
			    "name is neither "
			    "a standard finalizer name nor is it fully "
			    "qualified");
	}
}

/* --- ConfigMap and Secret data ----------------------------------------------- */

static void data_keys(const json_t *data, const char *field,
    const json_t *other, struct api_error *e)
{
	char p[ADM_PATH];
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)data, k, v) {
		struct adm_msgs m = { 0 };
		adm_path(p, "%s[%s]", field, k);
		adm_config_key(k, &m);
		adm_invalid_msgs(e, p, k, &m);
		if (other && json_object_get(other, k))
			adm_invalid_str(e, p, k,
			    "duplicate of key present in binaryData");
	}
}

static long long text_size(const json_t *data)
{
	long long n = 0;
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)data, k, v)
		n += json_is_string(v) ? (long long)json_string_length(v) : 0;
	return n;
}

static long long bytes_size(const json_t *data)
{
	long long n = 0;
	const char *k;
	json_t *v;
	long bad;

	json_object_foreach((json_t *)data, k, v) {
		long len = json_is_string(v) ?
		    adm_base64_decode(json_string_value(v), NULL, &bad) :
		    0;
		n += len > 0 ? len : 0;
	}
	return n;
}

static void immutable_data(const json_t *obj, const json_t *old,
    const char *const *fields, struct api_error *e)
{
	if (!adm_bool(old, "immutable"))
		return;
	if (!adm_bool(obj, "immutable"))
		adm_forbidden(e, "immutable",
		    "field is immutable when `immutable` is set");
	for (size_t i = 0; fields[i]; i++)
		if (!adm_equal(json_object_get(obj, fields[i]),
			json_object_get(old, fields[i])))
			adm_forbidden(e, fields[i],
			    "field is immutable when `immutable` is set");
}

void api_validate_configmap(const json_t *obj, const json_t *old,
    struct api_error *e)
{
	static const char *const fields[] = { "data", "binaryData", NULL };
	json_t *data = adm_obj(obj, "data"), *bin = adm_obj(obj, "binaryData");

	if (old) {
		adm_meta_update(obj, old, e);
		immutable_data(obj, old, fields, e);
	}
	adm_meta(obj, true, adm_name_subdomain, e);
	data_keys(data, "data", bin, e);
	data_keys(bin, "binaryData", NULL, e);
	if (text_size(data) + bytes_size(bin) > MAX_DATA)
		adm_toolong(e, "", MAX_DATA);
}

/* --- Secret ---------------------------------------------------------------------- */

static char *b64_encode(const char *s, size_t n)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"
				  "rstuvwxyz0123456789+/";
	char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
	const unsigned char *p = (const unsigned char *)s;

	for (size_t i = 0; i < n; i += 3) {
		unsigned w = (unsigned)p[i] << 16;
		if (i + 1 < n)
			w |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			w |= p[i + 2];
		*o++ = tbl[w >> 18 & 63];
		*o++ = tbl[w >> 12 & 63];
		*o++ = i + 1 < n ? tbl[w >> 6 & 63] : '=';
		*o++ = i + 2 < n ? tbl[w & 63] : '=';
	}
	*o = 0;
	return out;
}

/* stringData is write-only: conversion merges it into data. */
void api_default_secret(json_t *obj, const json_t *old)
{
	json_t *sd = adm_obj(obj, "stringData");
	const char *k;
	json_t *v;

	(void)old;
	if (!json_is_object(obj))
		return;
	adm_default_str(obj, "type", "Opaque");
	if (!sd)
		return;
	json_t *data = adm_obj_make(obj, "data");
	json_object_foreach(sd, k, v) {
		if (!json_is_string(v))
			continue;
		char *enc =
		    b64_encode(json_string_value(v), json_string_length(v));
		json_object_set_new(data, k, json_string(enc));
		free(enc);
	}
	json_object_del(obj, "stringData");
}

static unsigned char *decoded(const json_t *data, const char *key, long *len)
{
	const char *s = adm_str(data, key);
	unsigned char *out;
	long bad;

	*len = -1;
	if (!s)
		return NULL;
	out = malloc(strlen(s) + 1);
	*len = adm_base64_decode(s, out, &bad);
	return out;
}

/* The docker config keys must hold JSON objects. */
static void docker_json(const json_t *data, const char *key,
    struct api_error *e)
{
	char p[ADM_PATH];
	long len;
	unsigned char *raw = decoded(data, key, &len);
	json_error_t err;

	adm_path(p, "data[%s]", key);
	if (!raw) {
		adm_required(e, p, "");
		return;
	}
	json_t *j = len >= 0 ?
	    json_loadb((const char *)raw, (size_t)len, 0, &err) :
	    NULL;
	if (!json_is_object(j))
		adm_invalid_str(e, p, "<secret contents redacted>",
		    j ? "json: cannot unmarshal value into Go value of type "
			"map[string]interface {}" :
			err.text);
	json_decref(j);
	free(raw);
}

static void secret_type(const json_t *obj, struct api_error *e)
{
	const char *type = adm_str(obj, "type") ?: "";
	json_t *data = adm_obj(obj, "data");
	const char *san = "kubernetes.io/service-account.name";

	if (!strcmp(type, "kubernetes.io/service-account-token")) {
		if (adm_is_empty(adm_str(adm_obj(adm_obj(obj, "metadata"),
					     "annotations"),
			san)))
			adm_required(e,
			    "metadata.annotations[kubernetes.io/"
			    "service-account.name]",
			    "");
	} else if (!strcmp(type, "kubernetes.io/dockercfg")) {
		docker_json(data, ".dockercfg", e);
	} else if (!strcmp(type, "kubernetes.io/dockerconfigjson")) {
		docker_json(data, ".dockerconfigjson", e);
	} else if (!strcmp(type, "kubernetes.io/basic-auth")) {
		if (!json_object_get(data, "username") &&
		    !json_object_get(data, "password")) {
			adm_required(e, "data[username]", "");
			adm_required(e, "data[password]", "");
		}
	} else if (!strcmp(type, "kubernetes.io/ssh-auth")) {
		const char *k = adm_str(data, "ssh-privatekey");
		if (adm_is_empty(k))
			adm_required(e, "data[ssh-privatekey]", "");
	} else if (!strcmp(type, "kubernetes.io/tls")) {
		if (!json_object_get(data, "tls.crt"))
			adm_required(e, "data[tls.crt]", "");
		if (!json_object_get(data, "tls.key"))
			adm_required(e, "data[tls.key]", "");
	}
}

void api_validate_secret(const json_t *obj, const json_t *old,
    struct api_error *e)
{
	static const char *const fields[] = { "data", NULL };
	json_t *data = adm_obj(obj, "data");

	if (old) {
		adm_meta_update(obj, old, e);
		adm_immutable(e, "type", json_object_get(obj, "type"),
		    json_object_get(old, "type"));
		immutable_data(obj, old, fields, e);
	}
	adm_meta(obj, true, adm_name_subdomain, e);
	data_keys(data, "data", NULL, e);
	if (bytes_size(data) > MAX_DATA)
		adm_toolong(e, "data", MAX_DATA);
	secret_type(obj, e);
}

/* --- ServiceAccount ----------------------------------------------------------------- */

void api_validate_serviceaccount(const json_t *obj, const json_t *old,
    struct api_error *e)
{
	if (old)
		adm_meta_update(obj, old, e);
	adm_meta(obj, true, adm_name_subdomain, e);
}
