-- retrain-cli: PostgreSQL DDL of the six tables, rendered from the Alembic migrations
-- by `retrain-cli db sql`. Applying it by hand and then running `retrain-cli db init`
-- only seeds the default configs (alembic_version records the revision applied).

BEGIN;

CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL, 
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- Running upgrade  -> 0001_baseline

CREATE TABLE auto_retraining_config (
    id SERIAL NOT NULL, 
    model_type VARCHAR(32) NOT NULL, 
    schedule VARCHAR(128) NOT NULL, 
    drift_threshold FLOAT NOT NULL, 
    performance_threshold FLOAT NOT NULL, 
    strategy VARCHAR(16) NOT NULL, 
    max_model_age_s BIGINT, 
    hyperparameters JSONB NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    CONSTRAINT pk_auto_retraining_config PRIMARY KEY (id), 
    CONSTRAINT ck_auto_retraining_config_strategy CHECK (strategy IN ('incremental', 'full')), 
    CONSTRAINT uq_auto_retraining_config_model_type UNIQUE (model_type)
);

CREATE TABLE auto_retraining_jobs (
    id SERIAL NOT NULL, 
    name VARCHAR(128) NOT NULL, 
    model_name VARCHAR(128) NOT NULL, 
    model_type VARCHAR(32) NOT NULL, 
    enabled BOOLEAN NOT NULL, 
    schedule VARCHAR(128), 
    timezone VARCHAR(64) NOT NULL, 
    priority INTEGER NOT NULL, 
    drift_threshold FLOAT, 
    performance_threshold FLOAT, 
    strategy VARCHAR(16), 
    primary_metric VARCHAR(32) NOT NULL, 
    timeout_s BIGINT, 
    max_model_age_s BIGINT, 
    triggers JSONB NOT NULL, 
    spec JSONB NOT NULL, 
    source_file TEXT, 
    manual_requested_at TIMESTAMP WITH TIME ZONE, 
    manual_reason TEXT, 
    last_run_at TIMESTAMP WITH TIME ZONE, 
    last_run_status VARCHAR(16), 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    CONSTRAINT pk_auto_retraining_jobs PRIMARY KEY (id), 
    CONSTRAINT ck_auto_retraining_jobs_strategy CHECK (strategy IS NULL OR strategy IN ('incremental', 'full')), 
    CONSTRAINT fk_auto_retraining_jobs_model_type_auto_retraining_config FOREIGN KEY(model_type) REFERENCES auto_retraining_config (model_type), 
    CONSTRAINT uq_auto_retraining_jobs_name UNIQUE (name)
);

CREATE INDEX ix_auto_retraining_jobs_model_name ON auto_retraining_jobs (model_name);

CREATE TABLE model_drift_monitoring (
    id SERIAL NOT NULL, 
    check_id VARCHAR(32) NOT NULL, 
    job_id INTEGER, 
    model_name VARCHAR(128) NOT NULL, 
    checked_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    scope VARCHAR(16) NOT NULL, 
    feature VARCHAR(255), 
    kind VARCHAR(16), 
    method VARCHAR(32) NOT NULL, 
    statistic FLOAT, 
    threshold FLOAT NOT NULL, 
    drifted BOOLEAN NOT NULL, 
    drift_share FLOAT, 
    n_reference BIGINT NOT NULL, 
    n_current BIGINT NOT NULL, 
    missing_rate_ref FLOAT, 
    missing_rate_cur FLOAT, 
    metrics JSONB NOT NULL, 
    CONSTRAINT pk_model_drift_monitoring PRIMARY KEY (id), 
    CONSTRAINT ck_model_drift_monitoring_scope CHECK (scope IN ('feature', 'dataset', 'prediction')), 
    CONSTRAINT fk_model_drift_monitoring_job_id_auto_retraining_jobs FOREIGN KEY(job_id) REFERENCES auto_retraining_jobs (id) ON DELETE SET NULL
);

CREATE INDEX ix_model_drift_monitoring_check_id ON model_drift_monitoring (check_id);

CREATE INDEX ix_model_drift_monitoring_model_name_scope_checked_at ON model_drift_monitoring (model_name, scope, checked_at);

CREATE TABLE model_performance_tracking (
    id SERIAL NOT NULL, 
    check_id VARCHAR(32) NOT NULL, 
    job_id INTEGER, 
    model_name VARCHAR(128) NOT NULL, 
    version INTEGER, 
    checked_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    window_start TIMESTAMP WITH TIME ZONE, 
    window_end TIMESTAMP WITH TIME ZONE, 
    metric VARCHAR(32) NOT NULL, 
    value FLOAT, 
    reason VARCHAR(32), 
    threshold FLOAT, 
    baseline FLOAT, 
    is_primary BOOLEAN NOT NULL, 
    degraded BOOLEAN, 
    n_samples BIGINT NOT NULL, 
    n_dropped BIGINT NOT NULL, 
    CONSTRAINT pk_model_performance_tracking PRIMARY KEY (id), 
    CONSTRAINT fk_model_performance_tracking_job_id_auto_retraining_jobs FOREIGN KEY(job_id) REFERENCES auto_retraining_jobs (id) ON DELETE SET NULL
);

CREATE INDEX ix_model_performance_tracking_check_id ON model_performance_tracking (check_id);

CREATE INDEX ix_model_performance_tracking_model_name_checked_at ON model_performance_tracking (model_name, checked_at);

CREATE TABLE model_version_management (
    id SERIAL NOT NULL, 
    model_name VARCHAR(128) NOT NULL, 
    version INTEGER NOT NULL, 
    model_type VARCHAR(32) NOT NULL, 
    job_id INTEGER, 
    status VARCHAR(16) NOT NULL, 
    artifact_path TEXT NOT NULL, 
    sha256 VARCHAR(64) NOT NULL, 
    size_bytes BIGINT NOT NULL, 
    strategy VARCHAR(16), 
    parent_version INTEGER, 
    metrics JSONB NOT NULL, 
    hyperparameters JSONB NOT NULL, 
    data_fingerprint JSONB NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    promoted_at TIMESTAMP WITH TIME ZONE, 
    retired_at TIMESTAMP WITH TIME ZONE, 
    CONSTRAINT pk_model_version_management PRIMARY KEY (id), 
    CONSTRAINT ck_model_version_management_status CHECK (status IN ('registered', 'active', 'retired')), 
    CONSTRAINT ck_model_version_management_version_positive CHECK (version >= 1), 
    CONSTRAINT fk_model_version_management_job_id_auto_retraining_jobs FOREIGN KEY(job_id) REFERENCES auto_retraining_jobs (id) ON DELETE SET NULL, 
    CONSTRAINT fk_model_version_management_model_type_auto_retraining_config FOREIGN KEY(model_type) REFERENCES auto_retraining_config (model_type), 
    CONSTRAINT uq_model_version_management_model_name_version UNIQUE (model_name, version)
);

CREATE UNIQUE INDEX ux_model_version_management_one_active ON model_version_management (model_name) WHERE status = 'active';

CREATE TABLE retraining_job_history (
    id SERIAL NOT NULL, 
    job_id INTEGER NOT NULL, 
    trigger VARCHAR(16) NOT NULL, 
    trigger_detail TEXT, 
    status VARCHAR(16) NOT NULL, 
    host VARCHAR(255) NOT NULL, 
    pid INTEGER NOT NULL, 
    started_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    heartbeat_at TIMESTAMP WITH TIME ZONE, 
    finished_at TIMESTAMP WITH TIME ZONE, 
    duration_s FLOAT, 
    error TEXT, 
    version_id INTEGER, 
    promoted BOOLEAN, 
    gate JSONB, 
    CONSTRAINT pk_retraining_job_history PRIMARY KEY (id), 
    CONSTRAINT ck_retraining_job_history_status CHECK (status IN ('running', 'succeeded', 'failed', 'skipped', 'abandoned')), 
    CONSTRAINT ck_retraining_job_history_trigger CHECK (trigger IN ('scheduled', 'drift', 'performance', 'age', 'manual')), 
    CONSTRAINT fk_retraining_job_history_job_id_auto_retraining_jobs FOREIGN KEY(job_id) REFERENCES auto_retraining_jobs (id) ON DELETE CASCADE, 
    CONSTRAINT fk_retraining_job_history_version_id_model_version_management FOREIGN KEY(version_id) REFERENCES model_version_management (id) ON DELETE SET NULL
);

CREATE INDEX ix_retraining_job_history_job_id_started_at ON retraining_job_history (job_id, started_at);

CREATE INDEX ix_retraining_job_history_status_started_at ON retraining_job_history (status, started_at);

CREATE UNIQUE INDEX ux_retraining_job_history_running_job ON retraining_job_history (job_id) WHERE status = 'running';

INSERT INTO alembic_version (version_num) VALUES ('0001_baseline') RETURNING alembic_version.version_num;

-- Running upgrade 0001_baseline -> 0002_version_events

CREATE TABLE model_version_events (
    id SERIAL NOT NULL, 
    model_name VARCHAR(128) NOT NULL, 
    event VARCHAR(16) NOT NULL, 
    from_version INTEGER, 
    to_version INTEGER NOT NULL, 
    actor VARCHAR(255) NOT NULL, 
    reason TEXT, 
    job_id INTEGER, 
    run_id INTEGER, 
    at TIMESTAMP WITH TIME ZONE NOT NULL, 
    CONSTRAINT pk_model_version_events PRIMARY KEY (id), 
    CONSTRAINT ck_model_version_events_event CHECK (event IN ('promote', 'rollback')), 
    CONSTRAINT fk_model_version_events_job_id_auto_retraining_jobs FOREIGN KEY(job_id) REFERENCES auto_retraining_jobs (id) ON DELETE SET NULL, 
    CONSTRAINT fk_model_version_events_run_id_retraining_job_history FOREIGN KEY(run_id) REFERENCES retraining_job_history (id) ON DELETE SET NULL
);

CREATE INDEX ix_model_version_events_model_name_at ON model_version_events (model_name, at);

UPDATE alembic_version SET version_num='0002_version_events' WHERE alembic_version.version_num = '0001_baseline';

-- Running upgrade 0002_version_events -> 0003_leases

ALTER TABLE retraining_job_history ADD COLUMN slot INTEGER;

ALTER TABLE retraining_job_history ADD COLUMN lease_expires_at TIMESTAMP WITH TIME ZONE;

ALTER TABLE retraining_job_history ADD COLUMN scheduled_for TIMESTAMP WITH TIME ZONE;

CREATE UNIQUE INDEX ux_retraining_job_history_job_fire_time ON retraining_job_history (job_id, scheduled_for);

CREATE UNIQUE INDEX ux_retraining_job_history_running_slot ON retraining_job_history (slot) WHERE status = 'running' AND slot IS NOT NULL;

UPDATE alembic_version SET version_num='0003_leases' WHERE alembic_version.version_num = '0002_version_events';

-- Running upgrade 0003_leases -> 0004_reference_profiles

ALTER TABLE auto_retraining_jobs ADD COLUMN reference_profile JSONB;

UPDATE alembic_version SET version_num='0004_reference_profiles' WHERE alembic_version.version_num = '0003_leases';

-- Running upgrade 0004_reference_profiles -> 0005_estimated_performance

ALTER TABLE model_performance_tracking ADD COLUMN estimated BOOLEAN DEFAULT false NOT NULL;

UPDATE alembic_version SET version_num='0005_estimated_performance' WHERE alembic_version.version_num = '0004_reference_profiles';

-- Running upgrade 0005_estimated_performance -> 0006_rollouts

ALTER TABLE model_version_management DROP CONSTRAINT ck_model_version_management_status;

ALTER TABLE model_version_management ADD CONSTRAINT ck_model_version_management_status CHECK (status IN ('registered', 'candidate', 'active', 'retired'));

ALTER TABLE model_version_events DROP CONSTRAINT ck_model_version_events_event;

ALTER TABLE model_version_events ADD CONSTRAINT ck_model_version_events_event CHECK (event IN ('promote', 'rollback', 'candidate', 'step', 'abort'));

ALTER TABLE model_version_events ADD COLUMN from_weight FLOAT;

ALTER TABLE model_version_events ADD COLUMN to_weight FLOAT;

ALTER TABLE model_version_events ADD COLUMN details JSONB;

ALTER TABLE model_performance_tracking ADD COLUMN details JSONB;

CREATE UNIQUE INDEX ux_model_version_management_one_candidate ON model_version_management (model_name) WHERE status = 'candidate';

UPDATE alembic_version SET version_num='0006_rollouts' WHERE alembic_version.version_num = '0005_estimated_performance';

-- Running upgrade 0006_rollouts -> 0007_performance_row_kinds

ALTER TABLE model_performance_tracking ADD COLUMN kind VARCHAR(16);

UPDATE model_performance_tracking SET kind = CASE
    WHEN metric LIKE 'change_point:%%' THEN 'change_point'
    WHEN metric LIKE 'rollout:%%' THEN 'rollout'
    WHEN estimated AND metric = 'calibration_brier' THEN 'calibration'
    WHEN estimated THEN 'estimated'
    WHEN NOT is_primary AND EXISTS (
        SELECT 1 FROM model_performance_tracking AS e
        WHERE e.estimated AND e.model_name = model_performance_tracking.model_name AND e.metric = model_performance_tracking.metric
          AND e.window_start = model_performance_tracking.window_start AND e.window_end = model_performance_tracking.window_end
          AND e.checked_at < model_performance_tracking.checked_at
    ) THEN 'realized'
    ELSE 'checked'
END;

ALTER TABLE model_performance_tracking ALTER COLUMN kind SET NOT NULL;

ALTER TABLE model_performance_tracking ADD CONSTRAINT ck_model_performance_tracking_kind CHECK (kind IN ('checked', 'estimated', 'realized', 'calibration', 'change_point', 'rollout'));

CREATE INDEX ix_model_performance_tracking_model_name_kind_checked_at ON model_performance_tracking (model_name, kind, checked_at);

UPDATE alembic_version SET version_num='0007_performance_row_kinds' WHERE alembic_version.version_num = '0006_rollouts';

-- Running upgrade 0007_performance_row_kinds -> 0008_registry_identity

CREATE TABLE registry_identity (
    id VARCHAR(32) NOT NULL, 
    created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
    CONSTRAINT pk_registry_identity PRIMARY KEY (id)
);

INSERT INTO registry_identity (id, created_at) VALUES (replace(gen_random_uuid()::text, '-', ''), now());

UPDATE alembic_version SET version_num='0008_registry_identity' WHERE alembic_version.version_num = '0007_performance_row_kinds';

-- Running upgrade 0008_registry_identity -> 0009_task_defaults

ALTER TABLE auto_retraining_jobs DROP CONSTRAINT fk_auto_retraining_jobs_model_type_auto_retraining_config;

ALTER TABLE model_version_management DROP CONSTRAINT fk_model_version_management_model_type_auto_retraining_config;

ALTER TABLE auto_retraining_config DROP CONSTRAINT uq_auto_retraining_config_model_type;

ALTER TABLE auto_retraining_config ADD COLUMN task VARCHAR(16) DEFAULT 'binary' NOT NULL;

ALTER TABLE auto_retraining_config ADD COLUMN performance_metric VARCHAR(32) DEFAULT 'auc' NOT NULL;

ALTER TABLE auto_retraining_config ADD CONSTRAINT uq_auto_retraining_config_model_type_task UNIQUE (model_type, task);

ALTER TABLE auto_retraining_config ADD CONSTRAINT ck_auto_retraining_config_task CHECK (task IN ('binary', 'multiclass', 'regression'));

ALTER TABLE auto_retraining_jobs ADD COLUMN task VARCHAR(16) DEFAULT 'binary' NOT NULL;

ALTER TABLE auto_retraining_jobs ADD CONSTRAINT fk_auto_retraining_jobs_model_type_auto_retraining_config FOREIGN KEY(model_type, task) REFERENCES auto_retraining_config (model_type, task);

ALTER TABLE model_version_management ADD COLUMN task VARCHAR(16) DEFAULT 'binary' NOT NULL;

ALTER TABLE model_version_management ADD CONSTRAINT fk_model_version_management_model_type_auto_retraining_config FOREIGN KEY(model_type, task) REFERENCES auto_retraining_config (model_type, task);

ALTER TABLE model_drift_monitoring DROP CONSTRAINT ck_model_drift_monitoring_scope;

ALTER TABLE model_drift_monitoring ADD CONSTRAINT ck_model_drift_monitoring_scope CHECK (scope IN ('feature', 'dataset', 'prediction', 'target'));

UPDATE alembic_version SET version_num='0009_task_defaults' WHERE alembic_version.version_num = '0008_registry_identity';

-- Running upgrade 0009_task_defaults -> 0010_feature_importance

ALTER TABLE model_version_management ADD COLUMN importance JSONB;

UPDATE alembic_version SET version_num='0010_feature_importance' WHERE alembic_version.version_num = '0009_task_defaults';

-- Running upgrade 0010_feature_importance -> 0011_runs_and_windows

ALTER TABLE retraining_job_history ADD COLUMN cancel_requested_at TIMESTAMP WITH TIME ZONE;

ALTER TABLE retraining_job_history ADD COLUMN cancelled_by VARCHAR(255);

ALTER TABLE retraining_job_history ADD COLUMN phases JSONB;

ALTER TABLE retraining_job_history DROP CONSTRAINT ck_retraining_job_history_status;

ALTER TABLE retraining_job_history ADD CONSTRAINT ck_retraining_job_history_status CHECK (status IN ('running', 'succeeded', 'failed', 'skipped', 'abandoned', 'cancelled'));

ALTER TABLE retraining_job_history DROP CONSTRAINT ck_retraining_job_history_trigger;

ALTER TABLE retraining_job_history ADD CONSTRAINT ck_retraining_job_history_trigger CHECK (trigger IN ('scheduled', 'drift', 'performance', 'age', 'manual', 'data_quality'));

ALTER TABLE model_drift_monitoring DROP CONSTRAINT ck_model_drift_monitoring_scope;

ALTER TABLE model_drift_monitoring ADD CONSTRAINT ck_model_drift_monitoring_scope CHECK (scope IN ('feature', 'dataset', 'prediction', 'target', 'contract'));

ALTER TABLE model_drift_monitoring ADD COLUMN backfilled BOOLEAN DEFAULT false NOT NULL;

ALTER TABLE model_performance_tracking ADD COLUMN backfilled BOOLEAN DEFAULT false NOT NULL;

ALTER TABLE model_drift_monitoring ADD COLUMN window_start TIMESTAMP WITH TIME ZONE;

ALTER TABLE model_drift_monitoring ADD COLUMN window_end TIMESTAMP WITH TIME ZONE;

CREATE UNIQUE INDEX ux_model_drift_monitoring_backfilled_window ON model_drift_monitoring (job_id, window_start, window_end) WHERE backfilled AND scope = 'dataset';

CREATE UNIQUE INDEX ux_model_performance_tracking_backfilled_window ON model_performance_tracking (job_id, kind, window_start, window_end, metric) WHERE backfilled;

UPDATE alembic_version SET version_num='0011_runs_and_windows' WHERE alembic_version.version_num = '0010_feature_importance';

COMMIT;

