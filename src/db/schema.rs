// @generated automatically by Diesel CLI.

diesel::table! {
    activities (id) {
        id -> Int8,
        workspace_id -> Int8,
        kind -> Text,
        subject -> Nullable<Text>,
        body -> Nullable<Text>,
        occurred_at -> Timestamptz,
        actor_id -> Nullable<Int8>,
        lead_id -> Nullable<Int8>,
        contact_id -> Nullable<Int8>,
        company_id -> Nullable<Int8>,
        opportunity_id -> Nullable<Int8>,
        task_id -> Nullable<Int8>,
        custom_fields -> Jsonb,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        tags -> Array<Nullable<Text>>,
    }
}

diesel::table! {
    comments (id) {
        id -> Int8,
        workspace_id -> Int8,
        entity -> Text,
        record_id -> Int8,
        parent_id -> Nullable<Int8>,
        author_id -> Int8,
        body -> Text,
        mentions -> Array<Nullable<Int8>>,
        created_at -> Timestamptz,
        edited_at -> Nullable<Timestamptz>,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    companies (id) {
        id -> Int8,
        workspace_id -> Int8,
        name -> Text,
        domain -> Nullable<Text>,
        industry -> Nullable<Text>,
        employee_count -> Nullable<Int4>,
        annual_revenue -> Nullable<Numeric>,
        phone -> Nullable<Text>,
        website -> Nullable<Text>,
        address_line1 -> Nullable<Text>,
        address_line2 -> Nullable<Text>,
        city -> Nullable<Text>,
        state -> Nullable<Text>,
        postal_code -> Nullable<Text>,
        country -> Nullable<Text>,
        notes -> Nullable<Text>,
        owner_id -> Nullable<Int8>,
        custom_fields -> Jsonb,
        tags -> Array<Nullable<Text>>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        search_text -> Nullable<Text>,
    }
}

diesel::table! {
    contacts (id) {
        id -> Int8,
        workspace_id -> Int8,
        salutation -> Nullable<Text>,
        first_name -> Text,
        last_name -> Nullable<Text>,
        email -> Nullable<Text>,
        phone -> Nullable<Text>,
        mobile -> Nullable<Text>,
        company_id -> Nullable<Int8>,
        job_title -> Nullable<Text>,
        department -> Nullable<Text>,
        address_line1 -> Nullable<Text>,
        address_line2 -> Nullable<Text>,
        city -> Nullable<Text>,
        state -> Nullable<Text>,
        postal_code -> Nullable<Text>,
        country -> Nullable<Text>,
        contact_type -> Text,
        status -> Text,
        website -> Nullable<Text>,
        linkedin -> Nullable<Text>,
        twitter -> Nullable<Text>,
        notes -> Nullable<Text>,
        owner_id -> Nullable<Int8>,
        assigned_to_id -> Nullable<Int8>,
        custom_fields -> Jsonb,
        tags -> Array<Nullable<Text>>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        search_text -> Nullable<Text>,
    }
}

diesel::table! {
    event_consumers (name) {
        name -> Text,
        position -> Int8,
        failures -> Int4,
        last_error -> Nullable<Text>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    event_stream (singleton) {
        singleton -> Bool,
        sealed_seq -> Int8,
    }
}

diesel::table! {
    import_created (seq) {
        import_id -> Int8,
        ids -> Array<Nullable<Int8>>,
        seq -> Int8,
    }
}

diesel::table! {
    import_failed_rows (import_id, line) {
        import_id -> Int8,
        line -> Int8,
        cells -> Array<Nullable<Text>>,
        problems -> Jsonb,
    }
}

diesel::table! {
    import_file_chunks (import_id, seq) {
        import_id -> Int8,
        seq -> Int4,
        data -> Bytea,
    }
}

diesel::table! {
    import_updated (import_id, record_id) {
        import_id -> Int8,
        record_id -> Int8,
        before -> Jsonb,
        after -> Jsonb,
    }
}

diesel::table! {
    imports (id) {
        id -> Int8,
        workspace_id -> Int8,
        created_by -> Int8,
        resource -> Text,
        file_name -> Text,
        file_bytes -> Int8,
        options -> Jsonb,
        status -> Text,
        dry_run -> Bool,
        job_id -> Nullable<Int8>,
        total_rows -> Int8,
        imported -> Int8,
        updated -> Int8,
        skipped -> Int8,
        errors -> Int8,
        committed_line -> Int8,
        headers -> Array<Nullable<Text>>,
        #[sql_name = "columns"]
        columns_ -> Jsonb,
        ignored_columns -> Array<Nullable<Text>>,
        failure -> Nullable<Text>,
        undo_result -> Nullable<Jsonb>,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Nullable<Timestamptz>,
        undone_at -> Nullable<Timestamptz>,
        undone_by -> Nullable<Int8>,
        undo_failure -> Nullable<Text>,
        undo_created_seq -> Int8,
        undo_updated_id -> Int8,
    }
}

diesel::table! {
    job_history (id) {
        id -> Int8,
        workspace_id -> Nullable<Int8>,
        created_by -> Nullable<Int8>,
        kind -> Text,
        queue -> Text,
        args -> Jsonb,
        state -> Text,
        priority -> Int2,
        run_at -> Timestamptz,
        attempt -> Int4,
        max_attempts -> Int4,
        unique_key -> Nullable<Text>,
        progress -> Int2,
        progress_message -> Nullable<Text>,
        result -> Nullable<Jsonb>,
        errors -> Jsonb,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        finished_at -> Timestamptz,
    }
}

diesel::table! {
    jobs (id) {
        id -> Int8,
        workspace_id -> Nullable<Int8>,
        created_by -> Nullable<Int8>,
        kind -> Text,
        queue -> Text,
        args -> Jsonb,
        state -> Text,
        priority -> Int2,
        run_at -> Timestamptz,
        attempt -> Int4,
        max_attempts -> Int4,
        unique_key -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamptz>,
        locked_by -> Nullable<Text>,
        progress -> Int2,
        progress_message -> Nullable<Text>,
        errors -> Jsonb,
        cancel_requested -> Bool,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    lead_scoring_models (id) {
        id -> Int8,
        workspace_id -> Int8,
        version -> Int4,
        learner -> Text,
        active -> Bool,
        metrics -> Jsonb,
        candidates -> Jsonb,
        positives -> Int4,
        negatives -> Int4,
        train_rows -> Int4,
        test_rows -> Int4,
        features -> Jsonb,
        importances -> Jsonb,
        model -> Jsonb,
        training_ms -> Int8,
        started_by -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    leads (id) {
        id -> Int8,
        workspace_id -> Int8,
        first_name -> Nullable<Text>,
        last_name -> Nullable<Text>,
        email -> Nullable<Text>,
        phone -> Nullable<Text>,
        company_name -> Nullable<Text>,
        job_title -> Nullable<Text>,
        industry -> Nullable<Text>,
        company_size -> Nullable<Int4>,
        country -> Nullable<Text>,
        state -> Nullable<Text>,
        city -> Nullable<Text>,
        lead_source -> Nullable<Text>,
        status -> Text,
        priority -> Text,
        owner_id -> Nullable<Int8>,
        assigned_to_id -> Nullable<Int8>,
        score -> Nullable<Int2>,
        estimated_value -> Nullable<Numeric>,
        probability -> Nullable<Int2>,
        last_contacted_at -> Nullable<Timestamptz>,
        next_follow_up_at -> Nullable<Timestamptz>,
        converted_at -> Nullable<Timestamptz>,
        converted_contact_id -> Nullable<Int8>,
        converted_company_id -> Nullable<Int8>,
        converted_opportunity_id -> Nullable<Int8>,
        notes -> Nullable<Text>,
        custom_fields -> Jsonb,
        tags -> Array<Nullable<Text>>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        search_text -> Nullable<Text>,
        scored_at -> Nullable<Timestamptz>,
        scorer -> Nullable<Text>,
        score_model_version -> Nullable<Int4>,
        score_factors -> Nullable<Jsonb>,
    }
}

diesel::table! {
    login_failures (id) {
        id -> Int8,
        email -> Text,
        client_ip -> Text,
        failed_at -> Timestamptz,
    }
}

diesel::table! {
    notification_deliveries (id) {
        id -> Int8,
        notification_id -> Int8,
        user_id -> Int8,
        channel -> Text,
        status -> Text,
        attempts -> Int4,
        error -> Nullable<Text>,
        job_id -> Nullable<Int8>,
        deliver_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    notification_preferences (user_id) {
        user_id -> Int8,
        timezone -> Text,
        channels -> Jsonb,
        matrix -> Jsonb,
        digest -> Text,
        digest_weekday -> Int2,
        digest_time -> Time,
        dnd_enabled -> Bool,
        dnd_start -> Time,
        dnd_end -> Time,
        dnd_days -> Array<Nullable<Int2>>,
        sms_number -> Nullable<Text>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    notifications (id) {
        id -> Int8,
        workspace_id -> Int8,
        user_id -> Int8,
        kind -> Text,
        title -> Text,
        message -> Text,
        entity -> Nullable<Text>,
        record_id -> Nullable<Int8>,
        read_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        actor_id -> Nullable<Int8>,
        data -> Jsonb,
    }
}

diesel::table! {
    opportunities (id) {
        id -> Int8,
        workspace_id -> Int8,
        name -> Text,
        description -> Nullable<Text>,
        company_id -> Nullable<Int8>,
        contact_id -> Nullable<Int8>,
        stage -> Text,
        probability -> Int2,
        amount -> Nullable<Numeric>,
        currency -> Text,
        expected_close_date -> Nullable<Date>,
        actual_close_date -> Nullable<Date>,
        lost_reason -> Nullable<Text>,
        owner_id -> Nullable<Int8>,
        assigned_to_id -> Nullable<Int8>,
        custom_fields -> Jsonb,
        tags -> Array<Nullable<Text>>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        search_text -> Nullable<Text>,
    }
}

diesel::table! {
    record_events (id) {
        id -> Int8,
        workspace_id -> Int8,
        entity -> Text,
        record_id -> Int8,
        action -> Text,
        actor_id -> Nullable<Int8>,
        changes -> Jsonb,
        occurred_at -> Timestamptz,
        seq -> Nullable<Int8>,
        caused_by_run -> Nullable<Int8>,
    }
}

diesel::table! {
    record_followers (entity, record_id, user_id) {
        workspace_id -> Int8,
        entity -> Text,
        record_id -> Int8,
        user_id -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Int8,
        user_id -> Int8,
        family_id -> Uuid,
        token_hash -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        rotated_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    schedule_runs (schedule, slot) {
        schedule -> Text,
        slot -> Timestamptz,
        reason -> Text,
        job_id -> Nullable<Int8>,
        created_at -> Timestamptz,
        workspace_id -> Nullable<Int8>,
    }
}

diesel::table! {
    sign_up_requests (token_digest) {
        token_digest -> Text,
        workspace_name -> Text,
        name -> Text,
        email -> Text,
        password_hash -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    tasks (id) {
        id -> Int8,
        workspace_id -> Int8,
        title -> Text,
        description -> Nullable<Text>,
        task_type -> Text,
        status -> Text,
        priority -> Text,
        due_at -> Nullable<Timestamptz>,
        reminder_at -> Nullable<Timestamptz>,
        completed_at -> Nullable<Timestamptz>,
        assigned_to_id -> Nullable<Int8>,
        owner_id -> Nullable<Int8>,
        lead_id -> Nullable<Int8>,
        contact_id -> Nullable<Int8>,
        company_id -> Nullable<Int8>,
        opportunity_id -> Nullable<Int8>,
        custom_fields -> Jsonb,
        tags -> Array<Nullable<Text>>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        search_text -> Nullable<Text>,
        overdue_event_for -> Nullable<Timestamptz>,
        due_soon_event_for -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        workspace_id -> Int8,
        email -> Text,
        name -> Text,
        role -> Text,
        password_hash -> Text,
        is_active -> Bool,
        password_changed_at -> Timestamptz,
        last_login_at -> Nullable<Timestamptz>,
        deactivated_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    workflow_counters (workflow_id, path) {
        workflow_id -> Int8,
        path -> Text,
        counter -> Int8,
    }
}

diesel::table! {
    workflow_run_steps (id) {
        id -> Int8,
        run_id -> Int8,
        pc -> Int4,
        path -> Text,
        action -> Text,
        params -> Nullable<Jsonb>,
        status -> Text,
        attempt -> Int4,
        result -> Nullable<Jsonb>,
        error -> Nullable<Text>,
        started_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    workflow_runs (id) {
        id -> Int8,
        workspace_id -> Int8,
        workflow_id -> Int8,
        version -> Int4,
        entity -> Text,
        record_id -> Int8,
        status -> Text,
        trigger -> Jsonb,
        depth -> Int4,
        pc -> Int4,
        wake_at -> Nullable<Timestamptz>,
        error -> Nullable<Text>,
        started_by -> Nullable<Int8>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        slot -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    workflow_time_cursors (workflow_id) {
        workflow_id -> Int8,
        evaluated_until -> Timestamptz,
    }
}

diesel::table! {
    workflow_versions (workflow_id, version) {
        workflow_id -> Int8,
        version -> Int4,
        entity -> Text,
        trigger -> Jsonb,
        conditions -> Nullable<Jsonb>,
        actions -> Jsonb,
        created_by -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    workflows (id) {
        id -> Int8,
        workspace_id -> Int8,
        name -> Text,
        description -> Nullable<Text>,
        status -> Text,
        version -> Int4,
        entity -> Text,
        trigger -> Jsonb,
        conditions -> Nullable<Jsonb>,
        actions -> Jsonb,
        webhook_secret -> Text,
        created_by -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    workspaces (id) {
        id -> Int8,
        name -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        timezone -> Text,
    }
}

diesel::joinable!(activities -> companies (company_id));
diesel::joinable!(activities -> contacts (contact_id));
diesel::joinable!(activities -> leads (lead_id));
diesel::joinable!(activities -> opportunities (opportunity_id));
diesel::joinable!(activities -> tasks (task_id));
diesel::joinable!(activities -> users (actor_id));
diesel::joinable!(activities -> workspaces (workspace_id));
diesel::joinable!(comments -> users (author_id));
diesel::joinable!(comments -> workspaces (workspace_id));
diesel::joinable!(companies -> users (owner_id));
diesel::joinable!(companies -> workspaces (workspace_id));
diesel::joinable!(contacts -> companies (company_id));
diesel::joinable!(contacts -> workspaces (workspace_id));
diesel::joinable!(import_created -> imports (import_id));
diesel::joinable!(import_failed_rows -> imports (import_id));
diesel::joinable!(import_file_chunks -> imports (import_id));
diesel::joinable!(import_updated -> imports (import_id));
diesel::joinable!(imports -> workspaces (workspace_id));
diesel::joinable!(job_history -> users (created_by));
diesel::joinable!(job_history -> workspaces (workspace_id));
diesel::joinable!(jobs -> users (created_by));
diesel::joinable!(jobs -> workspaces (workspace_id));
diesel::joinable!(lead_scoring_models -> users (started_by));
diesel::joinable!(lead_scoring_models -> workspaces (workspace_id));
diesel::joinable!(leads -> companies (converted_company_id));
diesel::joinable!(leads -> contacts (converted_contact_id));
diesel::joinable!(leads -> opportunities (converted_opportunity_id));
diesel::joinable!(leads -> workspaces (workspace_id));
diesel::joinable!(notification_deliveries -> notifications (notification_id));
diesel::joinable!(notification_deliveries -> users (user_id));
diesel::joinable!(notification_preferences -> users (user_id));
diesel::joinable!(notifications -> workspaces (workspace_id));
diesel::joinable!(opportunities -> companies (company_id));
diesel::joinable!(opportunities -> contacts (contact_id));
diesel::joinable!(opportunities -> workspaces (workspace_id));
diesel::joinable!(record_events -> users (actor_id));
diesel::joinable!(record_events -> workspaces (workspace_id));
diesel::joinable!(record_followers -> users (user_id));
diesel::joinable!(record_followers -> workspaces (workspace_id));
diesel::joinable!(refresh_tokens -> users (user_id));
diesel::joinable!(tasks -> companies (company_id));
diesel::joinable!(tasks -> contacts (contact_id));
diesel::joinable!(tasks -> leads (lead_id));
diesel::joinable!(tasks -> opportunities (opportunity_id));
diesel::joinable!(tasks -> workspaces (workspace_id));
diesel::joinable!(users -> workspaces (workspace_id));
diesel::joinable!(workflow_counters -> workflows (workflow_id));
diesel::joinable!(workflow_run_steps -> workflow_runs (run_id));
diesel::joinable!(workflow_runs -> users (started_by));
diesel::joinable!(workflow_runs -> workspaces (workspace_id));
diesel::joinable!(workflow_time_cursors -> workflows (workflow_id));
diesel::joinable!(workflow_versions -> users (created_by));
diesel::joinable!(workflow_versions -> workflows (workflow_id));
diesel::joinable!(workflows -> users (created_by));
diesel::joinable!(workflows -> workspaces (workspace_id));

diesel::allow_tables_to_appear_in_same_query!(
    activities,
    comments,
    companies,
    contacts,
    event_consumers,
    event_stream,
    import_created,
    import_failed_rows,
    import_file_chunks,
    import_updated,
    imports,
    job_history,
    jobs,
    lead_scoring_models,
    leads,
    login_failures,
    notification_deliveries,
    notification_preferences,
    notifications,
    opportunities,
    record_events,
    record_followers,
    refresh_tokens,
    schedule_runs,
    sign_up_requests,
    tasks,
    users,
    workflow_counters,
    workflow_run_steps,
    workflow_runs,
    workflow_time_cursors,
    workflow_versions,
    workflows,
    workspaces,
);
