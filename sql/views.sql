-- Hand-written views users query, over the generated table views.

CREATE OR REPLACE VIEW labelled_activations AS
SELECT a.*, s.label, s.wnid, p.predicted_label, p.is_correct
FROM activations a
JOIN stimuli s USING (stimulus_set, stimulus)
LEFT JOIN predictions p USING (model_id, stimulus_set, stimulus);
COMMENT ON VIEW labelled_activations IS
    'activations with each stimulus'' label and wnid, and the model''s prediction (NULL if none recorded).';
