# Install rules and the Debian package (CPack DEB): `cpack -G DEB` in a build directory makes
# connectivity-agent_<version>-<release>_<arch>.deb. The binary's own install() rule is in
# agent/CMakeLists.txt (DESTINATION bin, i.e. /usr/bin in the package).
#
# Paths the package owns outside /usr are absolute (the unit in /lib/systemd/system, the config
# in /etc); everything else is relative to the packaging prefix, /usr.

set(CONNECTIVITY_DEB_MAINTAINER "connectivity-agent authors <connectivity-agent@example.org>"
    CACHE STRING "Maintainer field of the Debian package")
set(CONNECTIVITY_DEB_HOMEPAGE "https://example.org/connectivity-agent"
    CACHE STRING "Homepage field of the Debian package")

set(share_dir share/connectivity-agent)
set(doc_dir share/doc/connectivity-agent)
set(debian_dir ${PROJECT_SOURCE_DIR}/deploy/debian)
set(generated_dir ${PROJECT_BINARY_DIR}/debian)

# --- /etc/connectivity-agent/agent.toml: the embedded default, with a header -----------------
# Generated from agent/default_config.toml so the installed config is always the default the
# binary carries; a conffile, so dpkg keeps the site's edits across upgrades.
file(READ ${PROJECT_SOURCE_DIR}/agent/default_config.toml default_config_text)
file(CONFIGURE OUTPUT ${generated_dir}/agent.toml @ONLY CONTENT
"# /etc/connectivity-agent/agent.toml: the config connectivity-agent.service runs.
# As installed it is the agent's embedded default, below. Adapt it to this site, check it with
#   connectivity-agent validate --config /etc/connectivity-agent/agent.toml
# and apply it with `systemctl reload connectivity-agent` (a config that does not validate is
# rejected and the running one kept). Examples: /usr/share/connectivity-agent/configs/; the
# vendor profiles there (profiles/) are also built in (`--profile NAME`, [[include]]).
# Every option: /usr/share/doc/connectivity-agent/README.md
#
@default_config_text@")
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/agent/default_config.toml)
install(FILES ${generated_dir}/agent.toml DESTINATION /etc/connectivity-agent
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# --- /etc/connectivity-agent/web-config.example.yml: TLS and basic auth, all commented -------
# A conffile beside the config; the unit passes --web.config.file once web-config.yml exists.
install(FILES ${PROJECT_SOURCE_DIR}/deploy/web-config.example.yml DESTINATION /etc/connectivity-agent
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

# --- the systemd unit ---------------------------------------------------------------------
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/connectivity-agent.service
        DESTINATION /lib/systemd/system)

# --- examples, Prometheus/Alertmanager/Grafana files, dashboards ---------------------------
# Directories other work fills in are installed whole at install time: a file added there is
# packaged without touching this list. OPTIONAL: a directory that does not exist yet is skipped.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/configs/ DESTINATION ${share_dir}/configs
        FILES_MATCHING PATTERN "*.toml")
install(DIRECTORY ${PROJECT_SOURCE_DIR}/deploy/prometheus/ DESTINATION ${share_dir}/prometheus
        PATTERN "tests" EXCLUDE)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/deploy/alertmanager/ DESTINATION ${share_dir}/alertmanager
        OPTIONAL)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/deploy/grafana/provisioning/ DESTINATION ${share_dir}/grafana
        OPTIONAL)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/dashboards/ DESTINATION ${share_dir}/dashboards
        FILES_MATCHING PATTERN "*.json")

# --- /usr/share/doc/connectivity-agent (README, copyright, changelog.Debian.gz), man page ----
set(CONNECTIVITY_DEB_RELEASE 1)
set(CONNECTIVITY_DEB_VERSION ${PROJECT_VERSION}-${CONNECTIVITY_DEB_RELEASE})
# RFC 5322 date for the changelog; string(TIMESTAMP) honours SOURCE_DATE_EPOCH (reproducible).
string(TIMESTAMP CONNECTIVITY_DEB_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER ${CONNECTIVITY_DEB_MAINTAINER})
configure_file(${debian_dir}/changelog.in ${generated_dir}/changelog.Debian @ONLY)
# gzip -9n: no name or time stamp in the header, as Debian policy asks.
add_custom_command(
  OUTPUT ${generated_dir}/changelog.Debian.gz
  COMMAND gzip -9n -c ${generated_dir}/changelog.Debian > ${generated_dir}/changelog.Debian.gz
  DEPENDS ${generated_dir}/changelog.Debian
  COMMENT "Compressing changelog.Debian for the package"
  VERBATIM)
add_custom_command(
  OUTPUT ${generated_dir}/connectivity-agent.1.gz
  COMMAND gzip -9n -c ${debian_dir}/connectivity-agent.1 > ${generated_dir}/connectivity-agent.1.gz
  DEPENDS ${debian_dir}/connectivity-agent.1
  COMMENT "Compressing the manual page for the package"
  VERBATIM)
add_custom_target(deb-docs ALL
  DEPENDS ${generated_dir}/changelog.Debian.gz ${generated_dir}/connectivity-agent.1.gz)
# Building just the agent (`--target connectivity-agent`) before cpack must be enough too.
add_dependencies(connectivity-agent deb-docs)
install(FILES ${generated_dir}/connectivity-agent.1.gz DESTINATION share/man/man1)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${debian_dir}/copyright
              ${generated_dir}/changelog.Debian.gz
        DESTINATION ${doc_dir})
install(FILES ${debian_dir}/lintian-overrides DESTINATION share/lintian/overrides
        RENAME connectivity-agent)

# --- CPack DEB ----------------------------------------------------------------------------
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME connectivity-agent)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT ${CONNECTIVITY_DEB_MAINTAINER})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${CONNECTIVITY_DEB_RELEASE})
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE ${CONNECTIVITY_DEB_HOMEPAGE})
# The first line is the synopsis, the rest the extended description.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
"Prometheus agent probing library resource-sharing network paths
connectivity-agent watches the network paths that interlibrary loan and
resource-sharing systems depend on (ILLiad, Alma/Rapido, Z39.50 catalogues,
ISO ILL, LDAP, Talis Courseflow): TCP reachability, TLS handshakes and
certificate chains, HTTP(S), SQL Server (TDS), Z39.50, ISO ILL, LDAP and DNS
address sets, plus a packet-capture watch of vendors' inbound calls. Results
are served as Prometheus metrics on port 9470.")
# Dependencies from the binary's shared libraries (dpkg-shlibdeps, from dpkg-dev).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# TLS checks verify against the system CA store.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS ca-certificates)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${debian_dir}/conffiles ${debian_dir}/postinst ${debian_dir}/prerm ${debian_dir}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
  OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
include(CPack)
