#include "handlers.h"
#include "names.h"
#include "routes.h"
#include "settings.h"

const struct vd_route vd_routes[] = {
	{ "GET", "/api/v1/system/health", vd_h_system_health, VD_ROLE_PUBLIC, VD_BODY_NONE, 0, NULL,
	  "health of the store and the Docker engine" },
	{ "GET", "/api/v1/system/info", vd_h_system_info, VD_ROLE_VIEWER, VD_BODY_NONE, 0, NULL,
	  "versions and instance count" },
	{ "GET", "/api/v1/system/metrics", vd_h_system_metrics, VD_ROLE_VIEWER, VD_BODY_NONE, 0, NULL,
	  "host CPU, load, memory, disk and uptime" },
	{ "GET", "/api/v1/system/settings", vd_h_settings_get, VD_ROLE_VIEWER, VD_BODY_NONE, 0, NULL,
	  "the settings document" },
	{ "PUT", "/api/v1/system/settings", vd_h_settings_put, VD_ROLE_ADMIN, VD_BODY_JSON,
	  VD_SETTINGS_MAX_BODY, vd_v_settings_put, "change any subset of the settings" },
};

const size_t vd_routes_n = sizeof(vd_routes) / sizeof(vd_routes[0]);

static int
check_id(const char *value, struct vd_error *err)
{
	return vd_name_check("id", value, err);
}

/* Rules for path parameters, by name. */
const struct vd_param_rule vd_param_rules[] = {
	{ "id", check_id },
};

const size_t vd_param_rules_n = sizeof(vd_param_rules) / sizeof(vd_param_rules[0]);
