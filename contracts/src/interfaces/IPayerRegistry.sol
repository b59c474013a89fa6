// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// Payer balances in FeeToken. Balances may go negative (debt) when settlement charges more
/// than a payer holds.
interface IPayerRegistry {
    event Deposit(address indexed payer, uint256 amount);
    event WithdrawalRequested(address indexed payer, uint256 amount, uint64 withdrawableTimestamp);
    event WithdrawalCancelled(address indexed payer);
    event WithdrawalFinalized(address indexed payer, address recipient, uint256 amount);
    event UsageSettled(address indexed payer, uint256 fee);
    event ExcessTransferred(uint256 amount);

    function token() external view returns (address);
    function withdrawLockPeriod() external view returns (uint64);
    /// Admin only, once each: who may settle, and where excess goes.
    function setSettler(address payerReportManager) external;
    function setFeeDistributor(address distributionManager) external;

    /// Pulls `amount` FeeToken from msg.sender and credits `payer`.
    function deposit(address payer, uint256 amount) external;
    function getBalance(address payer) external view returns (int256);
    /// Moves `amount` from the caller's balance into a pending withdrawal, locked for withdrawLockPeriod.
    function requestWithdrawal(uint256 amount) external;
    /// Returns the pending amount to the caller's balance.
    function cancelWithdrawal() external;
    /// After the lock: transfers the pending amount to `recipient`.
    function finalizeWithdrawal(address recipient) external;
    function getPendingWithdrawal(address payer) external view returns (uint256 amount, uint64 withdrawableTimestamp);
    /// Settler only: charges each payer its fee.
    function settleUsage(address[] calldata payers, uint256[] calldata fees) external;
    /// Tokens held that no payer can claim any more (settled fees not yet sent on).
    function excess() external view returns (uint256);
    function sendExcessToFeeDistributor() external returns (uint256 amount);
    function totalDeposited() external view returns (uint256);
    function totalWithdrawn() external view returns (uint256);
    function totalSettled() external view returns (uint256);
}
