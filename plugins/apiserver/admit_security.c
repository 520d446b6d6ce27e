/* admit_security.c — container and pod security contexts: user and
 * group ID ranges, procMount, seccomp and AppArmor profiles,
 * allowPrivilegeEscalation's conflicts, sysctls and the pod-level
 * policies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"

#define ID_RANGE "must be between 0 and 2147483647, inclusive"

/* --- Go's rendering of the internal structs ---------------------------------
 * Kubernetes validates its internal types, which have no JSON tags: a bad
 * value that is one of them is marshalled with Go's field names, in
 * declaration order, unset pointers as null and unset strings as "". */

struct gofield {
	const char *go, *json;
	bool string; /* a plain string: "" when unset */
	char *(*sub)(const json_t *v);
};

static char *go_struct(const json_t *v, const struct gofield *fields)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	fputc('{', f);
	for (size_t i = 0; fields[i].go; i++) {
		json_t *x = json_object_get(v, fields[i].json);
		char *r = x && fields[i].sub ? fields[i].sub(x) :
		    !x && fields[i].string   ? strdup("\"\"") :
					       adm_render(x);
		fprintf(f, "%s\"%s\":%s", i ? "," : "", fields[i].go, r);
		free(r);
	}
	fputc('}', f);
	fclose(f);
	return out;
}

static char *go_profile(const json_t *v)
{
	static const struct gofield fields[] = { { "Type", "type", true, NULL },
		{ "LocalhostProfile", "localhostProfile", false, NULL },
		{ NULL, NULL, false, NULL } };
	return go_struct(v, fields);
}

static char *go_caps(const json_t *v)
{
	static const struct gofield fields[] = { { "Add", "add", false, NULL },
		{ "Drop", "drop", false, NULL }, { NULL, NULL, false, NULL } };
	return go_struct(v, fields);
}

static char *go_selinux(const json_t *v)
{
	static const struct gofield fields[] = { { "User", "user", true, NULL },
		{ "Role", "role", true, NULL }, { "Type", "type", true, NULL },
		{ "Level", "level", true, NULL }, { NULL, NULL, false, NULL } };
	return go_struct(v, fields);
}

static char *go_windows(const json_t *v)
{
	static const struct gofield fields[] = { { "GMSACredentialSpecName",
						     "gmsaCredentialSpecName",
						     false, NULL },
		{ "GMSACredentialSpec", "gmsaCredentialSpec", false, NULL },
		{ "RunAsUserName", "runAsUserName", false, NULL },
		{ "HostProcess", "hostProcess", false, NULL },
		{ NULL, NULL, false, NULL } };
	return go_struct(v, fields);
}

static char *go_security_context(const json_t *v)
{
	static const struct gofield fields[] = {
		{ "Capabilities", "capabilities", false, go_caps },
		{ "Privileged", "privileged", false, NULL },
		{ "SELinuxOptions", "seLinuxOptions", false, go_selinux },
		{ "WindowsOptions", "windowsOptions", false, go_windows },
		{ "RunAsUser", "runAsUser", false, NULL },
		{ "RunAsGroup", "runAsGroup", false, NULL },
		{ "RunAsNonRoot", "runAsNonRoot", false, NULL },
		{ "ReadOnlyRootFilesystem", "readOnlyRootFilesystem", false,
		    NULL },
		{ "AllowPrivilegeEscalation", "allowPrivilegeEscalation", false,
		    NULL },
		{ "ProcMount", "procMount", false, NULL },
		{ "SeccompProfile", "seccompProfile", false, go_profile },
		{ "AppArmorProfile", "appArmorProfile", false, go_profile },
		{ NULL, NULL, false, NULL }
	};
	return go_struct(v, fields);
}

static void invalid_go(struct api_error *e, const char *path, const json_t *v,
    char *(*render)(const json_t *), const char *detail)
{
	char *r = render(v);
	adm_invalid_raw(e, path, r, detail);
	free(r);
}

/* --- checks ------------------------------------------------------------------ */

static void id_range(const json_t *o, const char *key, const char *path,
    struct api_error *e)
{
	char p[ADM_PATH];
	long long v;

	if (adm_int(o, key, &v) && (v < 0 || v > 2147483647))
		adm_invalid_int(e, adm_path(p, "%s.%s", path, key), v,
		    ID_RANGE);
}

static void profile(const json_t *sp, const char *path, const char *what,
    struct api_error *e)
{
	static const char *const types[] = { "Localhost", "RuntimeDefault",
		"Unconfined", NULL };
	char p[ADM_PATH], d[100];
	const char *t = adm_str(sp, "type");
	json_t *lp = json_object_get(sp, "localhostProfile");

	if (!sp)
		return;
	adm_path(p, "%s.type", path);
	snprintf(d, sizeof d, "type is required when %s is set", what);
	if (adm_is_empty(t))
		adm_required(e, p, d);
	else if (!adm_in_list(t, types))
		adm_unsupported(e, p, t, types);
	adm_path(p, "%s.localhostProfile", path);
	if (t && !strcmp(t, "Localhost") && !json_is_string(lp)) {
		snprintf(d, sizeof d, "must be set when %s type is Localhost",
		    strcmp(what, "seccompProfile") ? "AppArmor" : "seccomp");
		adm_required(e, p, d);
	} else if (t && strcmp(t, "Localhost") && lp) {
		snprintf(d, sizeof d,
		    "can only be set when %s type is Localhost",
		    strcmp(what, "seccompProfile") ? "AppArmor" : "seccomp");
		if (strcmp(what, "seccompProfile"))
			adm_invalid_json(e, p, lp, d);
		else
			invalid_go(e, p, sp, go_profile, d);
	} else if (json_is_string(lp) && !strcmp(what, "seccompProfile")) {
		adm_local_path(json_string_value(lp), p, false, e);
	}
}

void adm_security_validate(const json_t *sc, const char *path,
    struct api_error *e)
{
	static const char *const procs[] = { "Default", "Unmasked", NULL };
	char p[ADM_PATH];
	const char *pm = adm_str(sc, "procMount");
	json_t *ape = json_object_get(sc, "allowPrivilegeEscalation");
	size_t i;
	json_t *cap;

	if (!sc)
		return;
	id_range(sc, "runAsUser", path, e);
	id_range(sc, "runAsGroup", path, e);
	if (pm) {
		adm_path(p, "%s.procMount", path);
		if (!adm_in_list(pm, procs))
			adm_unsupported(e, p, pm, procs);
		if (!strcmp(pm, "Unmasked"))
			adm_invalid_str(e, p, pm,
			    "`hostUsers` must be false to use `Unmasked`");
	}
	profile(adm_obj(sc, "seccompProfile"),
	    adm_path(p, "%s.seccompProfile", path), "seccompProfile", e);
	if (json_is_false(ape)) {
		if (adm_bool(sc, "privileged"))
			invalid_go(e, path, sc, go_security_context,
			    "cannot set "
			    "`allowPrivilegeEscalation` to false and "
			    "`privileged` to true");
		json_array_foreach(adm_arr(adm_obj(sc, "capabilities"), "add"),
		    i, cap)
			if (json_is_string(cap) &&
			    !strcmp(json_string_value(cap), "CAP_SYS_ADMIN"))
				invalid_go(e, path, sc, go_security_context,
				    "cannot set `allowPrivilegeEscalation` to false "
				    "and `capabilities.Add` CAP_SYS_ADMIN");
	}
	profile(adm_obj(sc, "appArmorProfile"),
	    adm_path(p, "%s.appArmorProfile", path), "appArmorProfile", e);
}

static void pod_policies(const json_t *sc, const char *path,
    struct api_error *e)
{
	static const char *const fsg[] = { "Always", "OnRootMismatch", NULL };
	static const char *const sgp[] = { "Merge", "Strict", NULL };
	static const char *const sel[] = { "MountOption", "Recursive", NULL };
	static const struct {
		const char *key;
		const char *const *values;
	} enums[] = { { "fsGroupChangePolicy", fsg },
		{ "supplementalGroupsPolicy", sgp },
		{ "seLinuxChangePolicy", sel } };
	char p[ADM_PATH];

	for (size_t i = 0; i < 3; i++) {
		const char *v = adm_str(sc, enums[i].key);
		if (v && !adm_in_list(v, enums[i].values))
			adm_unsupported(e,
			    adm_path(p, "%s.%s", path, enums[i].key), v,
			    enums[i].values);
		if (i == 0)
			profile(adm_obj(sc, "seccompProfile"),
			    adm_path(p, "%s.seccompProfile", path),
			    "seccompProfile", e);
		if (i == 0)
			profile(adm_obj(sc, "appArmorProfile"),
			    adm_path(p, "%s.appArmorProfile", path),
			    "appArmorProfile", e);
	}
}

static void sysctls(const json_t *list, const char *path, struct api_error *e)
{
	json_t *seen = json_object();
	char p[ADM_PATH];
	size_t i;
	json_t *s;

	json_array_foreach(list, i, s) {
		const char *n = adm_str(s, "name") ?: "";
		adm_path(p, "%s[%zu].name", path, i);
		if (!*n)
			adm_required(e, p, "");
		else if (json_object_get(seen, n))
			adm_duplicate_str(e, p, n);
		json_object_set_new(seen, n, json_true());
	}
	json_decref(seen);
}

void adm_pod_security_validate(const json_t *spec, const char *path,
    struct api_error *e)
{
	json_t *sc = adm_obj(spec, "securityContext");
	char p[ADM_PATH];
	size_t i;
	json_t *g;

	if (!sc)
		return;
	id_range(sc, "fsGroup", path, e);
	id_range(sc, "runAsUser", path, e);
	id_range(sc, "runAsGroup", path, e);
	json_array_foreach(adm_arr(sc, "supplementalGroups"), i, g)
		if (json_is_integer(g) &&
		    (json_integer_value(g) < 0 ||
			json_integer_value(g) > 2147483647))
			adm_invalid_int(e,
			    adm_path(p, "%s.supplementalGroups[%zu]", path, i),
			    json_integer_value(g), ID_RANGE);
	if (adm_bool(spec, "shareProcessNamespace") &&
	    adm_bool(spec, "hostPID"))
		adm_invalid_json(e,
		    adm_path(p, "%s.shareProcessNamespace", path), json_true(),
		    "ShareProcessNamespace and HostPID cannot both be enabled");
	sysctls(adm_arr(sc, "sysctls"), adm_path(p, "%s.sysctls", path), e);
	pod_policies(sc, path, e);
}
