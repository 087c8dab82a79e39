//! Smoke test: three directors elect a leader and replicate a write made through a follower.

use std::time::Duration;

use lvs_proto::v1 as pb;
use lvs_tests::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_through_follower_is_visible_everywhere() {
    let _turn = lvs_tests::serial::group("smoke");
    let mut c = Cluster::start(3);
    let leader = c.wait_leader(Duration::from_secs(20)).await;
    let follower = if leader == 1 { 2 } else { 1 };
    let mut admin = c.admin(follower).await;
    let resp = admin
        .add_service(pb::ServiceRequest {
            service: Some(pb::Service {
                key: "tcp/10.0.0.1:80".into(),
                scheduler: "rr".into(),
                ..Default::default()
            }),
            expected_revision: None,
        })
        .await
        .expect("add through follower")
        .into_inner();
    assert_eq!(resp.revision, 1);
    for id in 1..=3 {
        let cfg = c
            .admin(id)
            .await
            .get_config(pb::GetConfigRequest {
                stale: false,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(cfg.revision, 1, "director {id}");
        assert_eq!(cfg.config.unwrap().services[0].scheduler, "rr");
    }
}
