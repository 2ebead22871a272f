//! What callers act on: `CommError`'s variant, not only its message.

use rpo_comm::{host, Collective, CommError, NcclCollective, SingleProcess, Watchdog};
use tch::{Device, Tensor};

#[test]
fn bad_arguments_are_invalid_and_a_missing_backend_unavailable() {
    let single = SingleProcess::new(Device::Cpu);
    let mut t = Tensor::from_slice(&[1.0f32, 2.0]);
    let err = single.broadcast(&mut t, 1).unwrap_err();
    assert!(matches!(err, CommError::Invalid(_)), "{err}");
    assert_eq!(err.to_string(), "broadcast from rank 1 in a world of 1");
    let err = host::to_host_f64(&t).unwrap_err();
    assert!(matches!(err, CommError::Invalid(_)), "{err}");

    let err = NcclCollective::new(&single, Device::Cpu, Watchdog::default())
        .err()
        .expect("NCCL on CPU must fail");
    let CommError::Setup { what, cause } = &err else {
        panic!("not a set-up error: {err}");
    };
    assert_eq!(what, "rank 0: NCCL set-up on Cpu");
    assert!(matches!(**cause, CommError::Unavailable(_)), "{err}");
}
